//! The `geometry` section of a spec: the geometry of memorisation (METHODS.md section 6,
//! Ross et al., ICLR 2025). Its data are points of a known manifold, not text, so the
//! section carries its own data set, model and training settings; the spec's `data` and
//! `model` sections are not used by it. Every value is checked against [`limits`].

use serde::{Deserialize, Serialize};

use super::{SpecError, check_range, check_usize};

/// Limits of the geometry section (the form uses the same).
pub mod limits {
    /// Training points drawn from the manifold (before isolated and duplicated ones).
    pub const POINTS: (usize, usize) = (8, 5_000);
    /// Isolated training points.
    pub const ISOLATED: (usize, usize) = (0, 16);
    /// Duplicated training points.
    pub const DUPLICATED: (usize, usize) = (0, 16);
    /// Copies of each duplicated point (the original included).
    pub const COPIES: (usize, usize) = (2, 200);
    /// Standard deviation of the Gaussian noise added to the manifold points.
    pub const NOISE: (f64, f64) = (0.0, 0.5);
    /// Hidden width of the noise predictor.
    pub const WIDTH: (usize, usize) = (8, 1_024);
    /// Hidden layers of the noise predictor.
    pub const DEPTH: (usize, usize) = (1, 8);
    /// Size of the sinusoidal time embedding (even).
    pub const TIME_DIM: (usize, usize) = (2, 128);
    /// Optimiser steps.
    pub const STEPS: (usize, usize) = (1, 200_000);
    /// Batch size.
    pub const BATCH: (usize, usize) = (1, 4_096);
    /// Learning rate.
    pub const LR: (f64, f64) = (1e-6, 0.1);
    /// Generated samples.
    pub const SAMPLES: (usize, usize) = (0, 5_000);
    /// Steps of the sampler.
    pub const SAMPLE_STEPS: (usize, usize) = (2, 5_000);
    /// The time the sampler stops at.
    pub const T_MIN: (f64, f64) = (1e-5, 0.5);
    /// FLIPD's `t0` and the normal bundle's time.
    pub const T0: (f64, f64) = (1e-6, 1.0);
    /// Values of `t0` on the FLIPD curve.
    pub const CURVE_POINTS: (usize, usize) = (0, 64);
    /// Hutchinson probes.
    pub const PROBES: (usize, usize) = (1, 1_024);
    /// Neighbours of lPCA and MLE.
    pub const K: (usize, usize) = (2, 1_000);
    /// The copy threshold, as a fraction of the median nearest-neighbour spacing.
    pub const COPY_FRACTION: (f64, f64) = (0.0, 10.0);
    /// Classification thresholds (in dimensions).
    pub const THRESHOLD: (f64, f64) = (0.0, 10.0);
    /// Ambient dimension of a point file read by `mnemo lid`.
    pub const LID_DIM: (usize, usize) = (1, 256);
    /// Points of a point file read by `mnemo lid`.
    pub const LID_POINTS: usize = 50_000;
}

/// A data manifold with a known local intrinsic dimension at every point.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Manifold {
    /// A mixture of von Mises distributions on the unit circle (LID 1 in 2-D), the
    /// paper's toy.
    VonMises,
    /// The lollipop in 2-D: a disk (LID 2), a stick (LID 1) and a point (LID 0).
    Lollipop,
    /// The unit sphere in 3-D (LID 2).
    Sphere,
    /// A square of a tilted plane in 3-D (LID 2).
    Plane,
    /// A swiss roll in 3-D (LID 2).
    SwissRoll,
}

impl Manifold {
    /// Every manifold, in the order of the form.
    pub const ALL: [Manifold; 5] = [
        Manifold::VonMises,
        Manifold::Lollipop,
        Manifold::Sphere,
        Manifold::Plane,
        Manifold::SwissRoll,
    ];

    /// The ambient dimension.
    pub fn ambient(self) -> usize {
        match self {
            Manifold::VonMises | Manifold::Lollipop => 2,
            Manifold::Sphere | Manifold::Plane | Manifold::SwissRoll => 3,
        }
    }

    /// The name in specs and files.
    pub fn key(self) -> &'static str {
        match self {
            Manifold::VonMises => "von_mises",
            Manifold::Lollipop => "lollipop",
            Manifold::Sphere => "sphere",
            Manifold::Plane => "plane",
            Manifold::SwissRoll => "swiss_roll",
        }
    }

    /// A short name for summaries ("von Mises mixture", "unit sphere", ...).
    pub fn name(self) -> &'static str {
        match self {
            Manifold::VonMises => "von Mises mixture",
            Manifold::Lollipop => "lollipop",
            Manifold::Sphere => "unit sphere",
            Manifold::Plane => "tilted plane",
            Manifold::SwissRoll => "swiss roll",
        }
    }
}

/// What `LID_*`, the data's dimension a training point is classified against, is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LidReference {
    /// The generator's true LID (known for every generated point).
    #[default]
    True,
    /// lPCA (FO) on the training set, as one would without a known manifold.
    Lpca,
}

/// How FLIPD's Jacobian trace is computed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TraceMode {
    /// Exact for an ambient dimension up to 8, Hutchinson above.
    #[default]
    Auto,
    /// Exact: one vector-Jacobian product per coordinate (D of them).
    Exact,
    /// Hutchinson's estimator with `probes` Rademacher vectors.
    Hutchinson,
}

/// The data set: a manifold, plus isolated and duplicated training points.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GeometryData {
    /// The manifold.
    #[serde(default = "default_manifold")]
    pub manifold: Manifold,
    /// Training points drawn from the manifold (default 300).
    #[serde(default = "default_points")]
    pub points: usize,
    /// Isolated training points: each on a sparsely sampled part of the ground truth
    /// away from the rest (see `mnemo_measures::geometry::data`), true LID as that part.
    #[serde(default)]
    pub isolated: usize,
    /// Manifold points that are duplicated (true LID 0: a point mass).
    #[serde(default)]
    pub duplicated: usize,
    /// Copies of each duplicated point, the original included (default 20).
    #[serde(default = "default_copies")]
    pub copies: usize,
    /// Standard deviation of Gaussian noise added to the manifold points (default 0:
    /// points lie exactly on the manifold).
    #[serde(default)]
    pub noise: f64,
}

impl Default for GeometryData {
    fn default() -> Self {
        GeometryData {
            manifold: default_manifold(),
            points: default_points(),
            isolated: 0,
            duplicated: 0,
            copies: default_copies(),
            noise: 0.0,
        }
    }
}

/// The noise predictor: an MLP on `[x, time embedding]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GeometryModel {
    /// Hidden width (default 128).
    #[serde(default = "default_width")]
    pub width: usize,
    /// Hidden layers (default 3).
    #[serde(default = "default_depth")]
    pub depth: usize,
    /// Size of the sinusoidal time embedding (default 16, even).
    #[serde(default = "default_time_dim")]
    pub time_dim: usize,
}

impl Default for GeometryModel {
    fn default() -> Self {
        GeometryModel {
            width: default_width(),
            depth: default_depth(),
            time_dim: default_time_dim(),
        }
    }
}

/// Training of the noise predictor (Adam, constant rate).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GeometryTraining {
    /// Optimiser steps (default 3000).
    #[serde(default = "default_steps")]
    pub steps: usize,
    /// Batch size (default 128; capped at nothing: batches are drawn with replacement).
    #[serde(default = "default_batch")]
    pub batch: usize,
    /// Learning rate (default 2e-3).
    #[serde(default = "default_lr")]
    pub lr: f64,
}

impl Default for GeometryTraining {
    fn default() -> Self {
        GeometryTraining {
            steps: default_steps(),
            batch: default_batch(),
            lr: default_lr(),
        }
    }
}

/// Settings of a geometry-of-memorisation run (METHODS.md section 6).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GeometrySpec {
    /// The data set.
    #[serde(default)]
    pub data: GeometryData,
    /// The noise predictor.
    #[serde(default)]
    pub model: GeometryModel,
    /// Its training.
    #[serde(default)]
    pub training: GeometryTraining,
    /// Samples generated after training (default 256).
    #[serde(default = "default_samples")]
    pub samples: usize,
    /// Euler-Maruyama steps of the sampler, from t = 1 to `t_min` (default 200).
    #[serde(default = "default_sample_steps")]
    pub sample_steps: usize,
    /// Where the sampler stops (default 1e-3).
    #[serde(default = "default_t_min")]
    pub t_min: f64,
    /// FLIPD's `t0` (default 1e-4, the reference's).
    #[serde(default = "default_t0")]
    pub t0: f64,
    /// Values of `t0` on the FLIPD curve, log-spaced from 1e-4 to 1 (default 12; 0: no
    /// curve).
    #[serde(default = "default_curve_points")]
    pub curve_points: usize,
    /// How the Jacobian trace is computed.
    #[serde(default)]
    pub trace: TraceMode,
    /// Hutchinson probes per point (default 32).
    #[serde(default = "default_probes")]
    pub probes: usize,
    /// The normal bundle's time (default 1e-3); its K = 4D perturbations are drawn there.
    #[serde(default = "default_nb_t0")]
    pub normal_bundle_t0: f64,
    /// Neighbours of lPCA (default 20; skdim's pointwise default is 100, too many for a
    /// few hundred points).
    #[serde(default = "default_k")]
    pub k_lpca: usize,
    /// Neighbours of MLE (default 20).
    #[serde(default = "default_k")]
    pub k_mle: usize,
    /// A sample copies a training point when it lies closer to it than this fraction of
    /// the training set's median nearest-neighbour distance (default 0.1).
    #[serde(default = "default_copy_fraction")]
    pub copy_fraction: f64,
    /// What `LID_*` is (default the true LID).
    #[serde(default)]
    pub reference: LidReference,
    /// OD-Mem when `LID_theta < LID_* - margin` (default 0.5 dimensions).
    #[serde(default = "default_half")]
    pub margin: f64,
    /// DD-Mem when both `LID_theta` and `LID_*` are below this (default 0.5).
    #[serde(default = "default_half")]
    pub small: f64,
}

impl Default for GeometrySpec {
    fn default() -> Self {
        GeometrySpec {
            data: GeometryData::default(),
            model: GeometryModel::default(),
            training: GeometryTraining::default(),
            samples: default_samples(),
            sample_steps: default_sample_steps(),
            t_min: default_t_min(),
            t0: default_t0(),
            curve_points: default_curve_points(),
            trace: TraceMode::default(),
            probes: default_probes(),
            normal_bundle_t0: default_nb_t0(),
            k_lpca: default_k(),
            k_mle: default_k(),
            copy_fraction: default_copy_fraction(),
            reference: LidReference::default(),
            margin: default_half(),
            small: default_half(),
        }
    }
}

fn default_manifold() -> Manifold {
    Manifold::Lollipop
}
fn default_points() -> usize {
    300
}
fn default_copies() -> usize {
    20
}
fn default_width() -> usize {
    128
}
fn default_depth() -> usize {
    3
}
fn default_time_dim() -> usize {
    16
}
fn default_steps() -> usize {
    3000
}
fn default_batch() -> usize {
    128
}
fn default_lr() -> f64 {
    2e-3
}
fn default_samples() -> usize {
    256
}
fn default_sample_steps() -> usize {
    200
}
fn default_t_min() -> f64 {
    1e-3
}
fn default_t0() -> f64 {
    1e-4
}
fn default_curve_points() -> usize {
    12
}
fn default_probes() -> usize {
    32
}
fn default_nb_t0() -> f64 {
    1e-3
}
fn default_k() -> usize {
    20
}
fn default_copy_fraction() -> f64 {
    0.1
}
fn default_half() -> f64 {
    0.5
}

impl GeometrySpec {
    /// Training points in all: the manifold's, the isolated ones and the extra copies.
    pub fn n_train(&self) -> usize {
        let d = &self.data;
        d.points + d.isolated + d.duplicated * d.copies.saturating_sub(1)
    }

    /// Check every value against [`limits`].
    pub fn validate(&self) -> Result<(), SpecError> {
        let d = &self.data;
        check_usize("geometry.data.points", d.points, limits::POINTS)?;
        check_usize("geometry.data.isolated", d.isolated, limits::ISOLATED)?;
        check_usize("geometry.data.duplicated", d.duplicated, limits::DUPLICATED)?;
        check_usize("geometry.data.copies", d.copies, limits::COPIES)?;
        check_range("geometry.data.noise", d.noise, limits::NOISE)?;
        if d.duplicated > d.points {
            return Err(SpecError::Inconsistent(format!(
                "geometry.data.duplicated ({}) is more than geometry.data.points ({})",
                d.duplicated, d.points
            )));
        }
        let m = &self.model;
        check_usize("geometry.model.width", m.width, limits::WIDTH)?;
        check_usize("geometry.model.depth", m.depth, limits::DEPTH)?;
        check_usize("geometry.model.time_dim", m.time_dim, limits::TIME_DIM)?;
        if !m.time_dim.is_multiple_of(2) {
            return Err(SpecError::Inconsistent(format!(
                "geometry.model.time_dim must be even (sines and cosines), not {}",
                m.time_dim
            )));
        }
        let t = &self.training;
        check_usize("geometry.training.steps", t.steps, limits::STEPS)?;
        check_usize("geometry.training.batch", t.batch, limits::BATCH)?;
        check_range("geometry.training.lr", t.lr, limits::LR)?;
        check_usize("geometry.samples", self.samples, limits::SAMPLES)?;
        check_usize(
            "geometry.sample_steps",
            self.sample_steps,
            limits::SAMPLE_STEPS,
        )?;
        check_range("geometry.t_min", self.t_min, limits::T_MIN)?;
        check_range("geometry.t0", self.t0, limits::T0)?;
        check_usize(
            "geometry.curve_points",
            self.curve_points,
            limits::CURVE_POINTS,
        )?;
        check_usize("geometry.probes", self.probes, limits::PROBES)?;
        check_range(
            "geometry.normal_bundle_t0",
            self.normal_bundle_t0,
            limits::T0,
        )?;
        check_usize("geometry.k_lpca", self.k_lpca, limits::K)?;
        check_usize("geometry.k_mle", self.k_mle, limits::K)?;
        check_range(
            "geometry.copy_fraction",
            self.copy_fraction,
            limits::COPY_FRACTION,
        )?;
        check_range("geometry.margin", self.margin, limits::THRESHOLD)?;
        check_range("geometry.small", self.small, limits::THRESHOLD)?;
        let n = self.n_train();
        for (field, k) in [
            ("geometry.k_lpca", self.k_lpca),
            ("geometry.k_mle", self.k_mle),
        ] {
            if k + 1 > n {
                return Err(SpecError::Inconsistent(format!(
                    "{field} is {k}, but the training set has only {n} points (k + 1 needed)"
                )));
            }
        }
        Ok(())
    }
}
