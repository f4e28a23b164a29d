//! The geometry of memorisation (METHODS.md section 6; Ross et al., ICLR 2025): a
//! diffusion model trained on points of a known manifold, the model's local intrinsic
//! dimension (FLIPD, the normal bundle) against the data's (true, lPCA, MLE), and the
//! OD-Mem / DD-Mem classification of every training point.
//!
//! - [`data`]: the seeded generators (von Mises mixture, lollipop, sphere, plane, swiss
//!   roll; isolated and duplicated points), every point with its true LID.
//! - [`estimators`]: lPCA (FO, maxgap) and MLE as scikit-dimension 0.3.4 computes them,
//!   nearest neighbours and the copy test.
//! - [`model`]: the VP-SDE, the MLP noise predictor, training batches, the sampler.
//! - [`flipd`]: FLIPD (exact trace or Hutchinson) and the normal bundle of any
//!   [`flipd::NoisePredictor`] (the MLP, or a Gaussian's exact predictor for tests).
//! - [`classify`]: the classes and their thresholds.
//! - [`export`]: the CSV tables.
//!
//! [`GeometryRun`] is a step machine for the browser's worker: each
//! [`GeometryRun::step`] does one unit (an optimiser step, a sampler step, one FLIPD
//! pass, ...) and reports a [`GeometryProgress`]; [`GeometryRun::finish`] returns the
//! [`GeometryResult`]. [`run_blocking`] drives it natively. Every tensor read is
//! asynchronous and the tensor code uses only ordinary burn operations, so it runs on the
//! Flex CPU backend and on WebGPU alike. No clock is read in the engine.
//!
//! **Copies.** A sample is flagged as a copy of training point `j` (the nearest) when
//! it is closer than `copy_fraction` (default 0.1) times the median nearest-neighbour
//! distance of the distinct training points ([`estimators::median_spacing`]).
//!
//! **Samples' FLIPD** is measured at the same `t0` as the training points'.

use mnemo_core::ExperimentSpec;
use mnemo_core::backend::Device;
use mnemo_core::burn::module::Module;
use mnemo_core::burn::optim::{AdamConfig, GradientsParams, ModuleOptimizer};
use mnemo_core::burn::tensor::{Tensor, TensorData};
use mnemo_core::rng::{self, Stream};
use mnemo_core::spec::SpecError;
pub use mnemo_core::spec::geometry::{
    GeometryData, GeometryModel, GeometrySpec, GeometryTraining, LidReference, Manifold, TraceMode,
};
#[cfg(not(target_family = "wasm"))]
use mnemo_core::train::block_on;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};
use thiserror::Error;

pub mod classify;
pub mod data;
pub mod estimators;
pub mod export;
pub mod flipd;
pub mod model;

pub use classify::{MemClass, classify};
pub use data::{PointSet, Region, generate};
pub use estimators::LpcaVersion;
pub use flipd::{NoisePredictor, Trace};
pub use model::EpsNet;

/// The largest ambient dimension for which [`TraceMode::Auto`] takes the exact trace.
pub const EXACT_MAX_DIM: usize = 8;

/// The smallest `t0` of the FLIPD curve (its grid is log-spaced from here to 1).
pub const CURVE_T0_MIN: f64 = 1e-4;

/// Why a geometry run could not be set up or go on.
#[derive(Debug, Error)]
pub enum GeometryError {
    /// The spec has no `geometry` section.
    #[error("the spec has no `geometry` section")]
    NoSettings,
    /// The settings are out of range.
    #[error("invalid geometry settings: {0}")]
    Spec(#[from] SpecError),
    /// The loss became NaN or infinite.
    #[error("the loss became {loss} at step {step}; lower geometry.training.lr")]
    Diverged {
        /// Step.
        step: usize,
        /// The value.
        loss: f32,
    },
    /// The run is not finished.
    #[error("the geometry run is not finished ({done} of {total} steps)")]
    NotDone {
        /// Units done.
        done: usize,
        /// Units in all.
        total: usize,
    },
    /// A device operation failed.
    #[error("device error: {0}")]
    Device(String),
}

/// What the run is doing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Phase {
    /// Training the noise predictor.
    Train,
    /// Generating samples.
    Sample,
    /// FLIPD of the training points and the samples.
    Flipd,
    /// The normal bundle.
    NormalBundle,
    /// The FLIPD curve.
    Curve,
    /// lPCA, MLE, copies and classes.
    Estimate,
    /// Finished.
    Done,
}

/// Where a run stands.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct GeometryProgress {
    /// The phase of the next unit.
    pub phase: Phase,
    /// Units done.
    pub done: usize,
    /// Units in all.
    pub total: usize,
    /// Optimiser steps done.
    pub step: usize,
    /// The last training loss.
    pub loss: Option<f32>,
}

/// Everything measured at one training point.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrainPoint {
    /// Coordinates.
    pub x: Vec<f64>,
    /// Region.
    pub region: Region,
    /// True LID.
    pub true_lid: f64,
    /// lPCA (FO), `None` when undefined.
    pub lpca: Option<f64>,
    /// lPCA (maxgap).
    pub lpca_maxgap: Option<f64>,
    /// MLE.
    pub mle: Option<f64>,
    /// FLIPD at `t0` (`LID_theta`).
    pub flipd: f64,
    /// FLIPD's standard error (Hutchinson only).
    pub flipd_se: Option<f64>,
    /// The normal bundle's LID.
    pub normal_bundle: Option<f64>,
    /// `LID_*`, as the settings' `reference` says.
    pub lid_star: Option<f64>,
    /// The class.
    pub class: MemClass,
}

/// A generated sample.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Sample {
    /// Coordinates.
    pub x: Vec<f64>,
    /// FLIPD at `t0`.
    pub flipd: f64,
    /// The training point it copies, if any.
    pub copy_of: Option<usize>,
}

/// Estimator means over one region, against its true LID.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RegionSummary {
    /// The region.
    pub region: Region,
    /// Its points.
    pub n: usize,
    /// Their true LID.
    pub true_lid: f64,
    /// Mean lPCA (FO) over the defined values.
    pub lpca: Option<f64>,
    /// Mean MLE.
    pub mle: Option<f64>,
    /// Mean FLIPD.
    pub flipd: Option<f64>,
    /// Mean normal-bundle LID.
    pub normal_bundle: Option<f64>,
}

/// The result of a geometry run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GeometryResult {
    /// The settings.
    pub settings: GeometrySpec,
    /// The seed.
    pub seed: u64,
    /// Ambient dimension.
    pub dim: usize,
    /// Whether the trace was exact (else Hutchinson).
    pub exact_trace: bool,
    /// Training loss of every step.
    pub losses: Vec<f32>,
    /// Training points.
    pub train: Vec<TrainPoint>,
    /// Samples.
    pub samples: Vec<Sample>,
    /// The FLIPD curve's `t0` grid.
    pub curve_t0: Vec<f64>,
    /// `curve[i][j]`: FLIPD of training point `i` at `curve_t0[j]`.
    pub curve: Vec<Vec<f64>>,
    /// MLE aggregated over the training set (MacKay-Ghahramani).
    pub mle_global: Option<f64>,
    /// The median nearest-neighbour distance of the distinct training points.
    pub median_spacing: Option<f64>,
    /// The copy threshold (`copy_fraction * median_spacing`).
    pub copy_threshold: f64,
    /// Per region.
    pub regions: Vec<RegionSummary>,
}

impl GeometryResult {
    /// Training points of each class, in [`MemClass::ALL`] order.
    pub fn class_counts(&self) -> [usize; 4] {
        let mut c = [0; 4];
        for p in &self.train {
            if let Some(i) = MemClass::ALL.iter().position(|&m| m == p.class) {
                c[i] += 1;
            }
        }
        c
    }

    /// Samples flagged as copies.
    pub fn copies(&self) -> usize {
        self.samples.iter().filter(|s| s.copy_of.is_some()).count()
    }

    /// The summary of `region`, if it has points.
    pub fn region(&self, region: Region) -> Option<&RegionSummary> {
        self.regions.iter().find(|r| r.region == region)
    }
}

/// The FLIPD curve's grid: `n` values log-spaced from [`CURVE_T0_MIN`] to 1.
pub fn curve_grid(n: usize) -> Vec<f64> {
    match n {
        0 => Vec::new(),
        1 => vec![CURVE_T0_MIN],
        _ => (0..n)
            .map(|j| 10f64.powf(CURVE_T0_MIN.log10() * (1.0 - j as f64 / (n - 1) as f64)))
            .collect(),
    }
}

/// A geometry run in progress (see the module).
pub struct GeometryRun {
    settings: GeometrySpec,
    seed: u64,
    data: PointSet,
    train32: Vec<f32>,
    device: Device,
    plain: Device,
    model: Option<EpsNet>,
    optim: ModuleOptimizer,
    batch_rng: ChaCha8Rng,
    geo_rng: ChaCha8Rng,
    exact: bool,
    step: usize,
    losses: Vec<f32>,
    sample_step: usize,
    sample_x: Option<Tensor<2>>,
    samples: Vec<f64>,
    flipd_done: bool,
    flipd_train: Vec<f64>,
    flipd_se: Option<Vec<f64>>,
    flipd_samples: Vec<f64>,
    normal: Option<Vec<Option<f64>>>,
    curve_t0: Vec<f64>,
    curve: Vec<Vec<f64>>,
    result: Option<GeometryResult>,
}

impl GeometryRun {
    /// A run of `spec`'s `geometry` section under its seed, on `device` (autodiff is
    /// switched on here).
    pub fn new(spec: &ExperimentSpec, device: &Device) -> Result<Self, GeometryError> {
        let settings = spec.geometry.clone().ok_or(GeometryError::NoSettings)?;
        Self::from_settings(settings, spec.seed, device)
    }

    /// A run of explicit settings.
    pub fn from_settings(
        settings: GeometrySpec,
        seed: u64,
        device: &Device,
    ) -> Result<Self, GeometryError> {
        settings.validate()?;
        let data = generate(&settings.data, seed);
        let device = device.clone().autodiff();
        let plain = device.clone().without_autodiff();
        let model = EpsNet::new(&settings.model, data.dim, seed, &device);
        let exact = match settings.trace {
            TraceMode::Exact => true,
            TraceMode::Hutchinson => false,
            TraceMode::Auto => data.dim <= EXACT_MAX_DIM,
        };
        Ok(GeometryRun {
            train32: data.points.iter().map(|&v| v as f32).collect(),
            curve_t0: curve_grid(settings.curve_points),
            optim: AdamConfig::new().with_epsilon(1e-8).init(),
            batch_rng: rng::stream(seed, Stream::DataOrder),
            geo_rng: rng::stream(seed, Stream::Geometry),
            settings,
            seed,
            data,
            device,
            plain,
            model: Some(model),
            exact,
            step: 0,
            losses: Vec::new(),
            sample_step: 0,
            sample_x: None,
            samples: Vec::new(),
            flipd_done: false,
            flipd_train: Vec::new(),
            flipd_se: None,
            flipd_samples: Vec::new(),
            normal: None,
            curve: Vec::new(),
            result: None,
        })
    }

    /// The training set.
    pub fn data(&self) -> &PointSet {
        &self.data
    }

    /// The noise predictor as it stands (on the autodiff device).
    pub fn model(&self) -> Option<&EpsNet> {
        self.model.as_ref()
    }

    /// The autodiff device the run computes on.
    pub fn device(&self) -> &Device {
        &self.device
    }

    fn sampling_units(&self) -> usize {
        if self.settings.samples > 0 {
            self.settings.sample_steps + 1
        } else {
            0
        }
    }

    fn total(&self) -> usize {
        self.settings.training.steps + self.sampling_units() + 1 + 1 + self.curve_t0.len() + 1
    }

    fn phase(&self) -> Phase {
        if self.result.is_some() {
            Phase::Done
        } else if self.step < self.settings.training.steps {
            Phase::Train
        } else if self.sample_step < self.sampling_units() {
            Phase::Sample
        } else if !self.flipd_done {
            Phase::Flipd
        } else if self.normal.is_none() {
            Phase::NormalBundle
        } else if self.curve.len() < self.curve_t0.len() {
            Phase::Curve
        } else {
            Phase::Estimate
        }
    }

    /// Where the run stands.
    pub fn progress(&self) -> GeometryProgress {
        let done = self.step
            + self.sample_step
            + self.flipd_done as usize
            + self.normal.is_some() as usize
            + self.curve.len()
            + self.result.is_some() as usize;
        GeometryProgress {
            phase: self.phase(),
            done,
            total: self.total(),
            step: self.step,
            loss: self.losses.last().copied(),
        }
    }

    /// Whether everything is done.
    pub fn is_done(&self) -> bool {
        self.result.is_some()
    }

    fn trace(&mut self) -> Trace<'_> {
        if self.exact {
            Trace::Exact
        } else {
            Trace::Hutchinson {
                probes: self.settings.probes,
                rng: &mut self.geo_rng,
            }
        }
    }

    /// Do one unit of work and return the progress after it; does nothing once done.
    pub async fn step(&mut self) -> Result<GeometryProgress, GeometryError> {
        match self.phase() {
            Phase::Done => {}
            Phase::Train => self.train_step().await?,
            Phase::Sample => self.sample_unit().await?,
            Phase::Flipd => {
                let t0 = self.settings.t0;
                let x = self.data.points.clone();
                let model = self.model.take().ok_or(GeometryError::NoSettings)?;
                let device = self.device.clone();
                let r = flipd::flipd(&model, &x, t0, self.trace(), &device).await;
                let r2 = match &r {
                    Ok(_) if !self.samples.is_empty() => {
                        let s = self.samples.clone();
                        Some(flipd::flipd(&model, &s, t0, self.trace(), &device).await)
                    }
                    _ => None,
                };
                self.model = Some(model);
                let (v, se) = r?;
                self.flipd_train = v;
                self.flipd_se = se;
                if let Some(r2) = r2 {
                    self.flipd_samples = r2?.0;
                }
                self.flipd_done = true;
            }
            Phase::NormalBundle => {
                let net = self.frozen()?;
                let x = self.data.points.clone();
                let t = self.settings.normal_bundle_t0;
                let nb = flipd::normal_bundle(&net, &x, t, &mut self.geo_rng, &self.plain).await?;
                self.normal = Some(nb);
            }
            Phase::Curve => {
                let t0 = self.curve_t0[self.curve.len()];
                let x = self.data.points.clone();
                let model = self.model.take().ok_or(GeometryError::NoSettings)?;
                let device = self.device.clone();
                let r = flipd::flipd(&model, &x, t0, self.trace(), &device).await;
                self.model = Some(model);
                self.curve.push(r?.0);
            }
            Phase::Estimate => self.result = Some(self.estimate()),
        }
        Ok(self.progress())
    }

    fn frozen(&self) -> Result<EpsNet, GeometryError> {
        self.model
            .as_ref()
            .map(|m| m.valid())
            .ok_or(GeometryError::NoSettings)
    }

    async fn train_step(&mut self) -> Result<(), GeometryError> {
        let t = &self.settings.training;
        let (dim, e) = (self.data.dim, self.settings.model.time_dim);
        let b = model::draw_batch(&mut self.batch_rng, &self.train32, dim, t.batch, e);
        let dev = &self.device;
        let y = Tensor::<2>::from_data(TensorData::new(b.y, [t.batch, dim]), dev);
        let temb = Tensor::<2>::from_data(TensorData::new(b.temb, [t.batch, e]), dev);
        let target = Tensor::<2>::from_data(TensorData::new(b.e, [t.batch, dim]), dev);
        let model = self.model.take().ok_or(GeometryError::NoSettings)?;
        let diff = model.forward(y, temb) - target;
        let loss = (diff.clone() * diff).mean();
        let grads = GradientsParams::from_grads(loss.backward(), &model);
        self.model = Some(self.optim.step(t.lr, model, grads));
        self.step += 1;
        let l = flipd::read(loss.inner().reshape([1, 1])).await?;
        let l = l.first().copied().unwrap_or(f32::NAN);
        self.losses.push(l);
        if !l.is_finite() {
            return Err(GeometryError::Diverged {
                step: self.step,
                loss: l,
            });
        }
        Ok(())
    }

    async fn sample_unit(&mut self) -> Result<(), GeometryError> {
        let (n, d) = (self.settings.samples, self.data.dim);
        let s_steps = self.settings.sample_steps;
        let t_min = self.settings.t_min;
        let net = self.frozen()?;
        let dev = self.plain.clone();
        let h = (1.0 - t_min) / s_steps as f64;
        let x = match self.sample_x.take() {
            Some(x) => x,
            None => {
                let z: Vec<f32> = (0..n * d)
                    .map(|_| model::gauss(&mut self.geo_rng))
                    .collect();
                Tensor::<2>::from_data(TensorData::new(z, [n, d]), &dev)
            }
        };
        if self.sample_step < s_steps {
            let t = 1.0 - self.sample_step as f64 * h;
            let (b, s) = (model::beta(t), model::sigma(t));
            let eps = net.eps(x.clone(), t);
            // x + h (beta x / 2 + beta score), score = -eps / sigma.
            let mut next = x.clone() * (1.0 + 0.5 * b * h) - eps * (b * h / s);
            if self.sample_step + 1 < s_steps {
                let z: Vec<f32> = (0..n * d)
                    .map(|_| model::gauss(&mut self.geo_rng))
                    .collect();
                let z = Tensor::<2>::from_data(TensorData::new(z, [n, d]), &dev);
                next = next + z * (b * h).sqrt();
            }
            self.sample_x = Some(next);
        } else {
            let (p, s) = (model::psi(t_min), model::sigma(t_min));
            let eps = net.eps(x.clone(), t_min);
            let x0 = (x - eps * s) / p;
            self.samples = flipd::read(x0).await?.iter().map(|&v| v as f64).collect();
        }
        self.sample_step += 1;
        Ok(())
    }

    fn estimate(&mut self) -> GeometryResult {
        let s = &self.settings;
        let (pts, d) = (&self.data.points, self.data.dim);
        let lpca = estimators::lpca(pts, d, s.k_lpca, LpcaVersion::Fo);
        let maxgap = estimators::lpca(pts, d, s.k_lpca, LpcaVersion::MaxGap);
        let mle = estimators::mle(pts, d, s.k_mle);
        let normal = self.normal.clone().unwrap_or_default();
        let train: Vec<TrainPoint> = (0..self.data.len())
            .map(|i| {
                let lid_star = match s.reference {
                    LidReference::True => Some(self.data.true_lid[i]),
                    LidReference::Lpca => lpca[i],
                };
                let flipd = self.flipd_train.get(i).copied().unwrap_or(f64::NAN);
                TrainPoint {
                    x: self.data.point(i).to_vec(),
                    region: self.data.region[i],
                    true_lid: self.data.true_lid[i],
                    lpca: lpca[i],
                    lpca_maxgap: maxgap[i],
                    mle: mle[i],
                    flipd,
                    flipd_se: self.flipd_se.as_ref().and_then(|v| v.get(i).copied()),
                    normal_bundle: normal.get(i).copied().flatten(),
                    lid_star,
                    class: classify(Some(flipd), lid_star, s.small, s.margin),
                }
            })
            .collect();
        let median_spacing = estimators::median_spacing(pts, d);
        let copy_threshold = s.copy_fraction * median_spacing.unwrap_or(0.0);
        let copy_of = estimators::copies(&self.samples, pts, d, copy_threshold);
        let samples = self
            .samples
            .chunks(d)
            .zip(copy_of)
            .enumerate()
            .map(|(i, (x, c))| Sample {
                x: x.to_vec(),
                flipd: self.flipd_samples.get(i).copied().unwrap_or(f64::NAN),
                copy_of: c,
            })
            .collect();
        let curve = (0..self.data.len())
            .map(|i| self.curve.iter().map(|c| c[i]).collect())
            .collect();
        GeometryResult {
            settings: s.clone(),
            seed: self.seed,
            dim: d,
            exact_trace: self.exact,
            losses: self.losses.clone(),
            regions: summarise(&train),
            train,
            samples,
            curve_t0: self.curve_t0.clone(),
            curve,
            mle_global: estimators::mle_global(&mle),
            median_spacing,
            copy_threshold,
        }
    }

    /// The result (only once [`GeometryRun::is_done`]).
    pub async fn finish(self) -> Result<GeometryResult, GeometryError> {
        let p = self.progress();
        self.result.ok_or(GeometryError::NotDone {
            done: p.done,
            total: p.total,
        })
    }
}

fn mean(v: impl Iterator<Item = Option<f64>>) -> Option<f64> {
    let d: Vec<f64> = v.flatten().filter(|x| x.is_finite()).collect();
    (!d.is_empty()).then(|| d.iter().sum::<f64>() / d.len() as f64)
}

/// Estimator means per region (regions in [`Region::ALL`] order, empty ones left out).
pub fn summarise(train: &[TrainPoint]) -> Vec<RegionSummary> {
    Region::ALL
        .iter()
        .filter_map(|&region| {
            let pts: Vec<&TrainPoint> = train.iter().filter(|p| p.region == region).collect();
            let first = pts.first()?;
            Some(RegionSummary {
                region,
                n: pts.len(),
                true_lid: first.true_lid,
                lpca: mean(pts.iter().map(|p| p.lpca)),
                mle: mean(pts.iter().map(|p| p.mle)),
                flipd: mean(pts.iter().map(|p| Some(p.flipd))),
                normal_bundle: mean(pts.iter().map(|p| p.normal_bundle)),
            })
        })
        .collect()
}

/// Drive a run to the end on this thread, reporting progress after every unit;
/// `on_progress` returning `Break` stops it (then `Ok(None)`).
#[cfg(not(target_family = "wasm"))]
pub fn run_blocking(
    mut run: GeometryRun,
    mut on_progress: impl FnMut(&GeometryProgress) -> std::ops::ControlFlow<()>,
) -> Result<Option<GeometryResult>, GeometryError> {
    while !run.is_done() {
        let p = block_on(run.step())?;
        if on_progress(&p).is_break() {
            return Ok(None);
        }
    }
    block_on(run.finish()).map(Some)
}

/// LID of user-supplied points by a data-side estimator (`mnemo lid`): pointwise values
/// (`None` where undefined) for `k` neighbours.
pub fn estimate_lid(
    points: &[f64],
    dim: usize,
    estimator: LidEstimator,
    k: usize,
) -> Vec<Option<f64>> {
    match estimator {
        LidEstimator::Lpca => estimators::lpca(points, dim, k, LpcaVersion::Fo),
        LidEstimator::LpcaMaxGap => estimators::lpca(points, dim, k, LpcaVersion::MaxGap),
        LidEstimator::Mle => estimators::mle(points, dim, k),
    }
}

/// A data-side estimator, by name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LidEstimator {
    /// lPCA, FO.
    Lpca,
    /// lPCA, maxgap.
    LpcaMaxGap,
    /// MLE (Levina-Bickel).
    Mle,
}
