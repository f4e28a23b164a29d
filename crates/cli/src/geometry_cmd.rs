//! `mnemo lid` (data-side LID of a point file) and `mnemo geometry` (train a diffusion
//! model on a known manifold and measure the geometry of memorisation, METHODS.md
//! section 6).

use std::fs;
use std::ops::ControlFlow;
use std::path::{Path, PathBuf};
use std::time::Instant;

use clap::ValueEnum;
use indicatif::{ProgressBar, ProgressStyle};
use mnemo_core::BackendKind;
use mnemo_core::spec::geometry::limits;
use mnemo_measures::geometry::{
    self, GeometryResult, GeometryRun, LidEstimator, MemClass, Region, estimators,
    export as geo_export,
};
use mnemo_plots::did::svg_of;
use mnemo_plots::geometry::{LidColour, estimator_chart, flipd_curve_chart, scatter_chart};

use crate::{CliError, device, io_err, read_spec};

/// The estimators `mnemo lid` offers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LidArg {
    /// lPCA, Fukunaga-Olsen (eigenvalues above 0.05 of the largest).
    Lpca,
    /// lPCA, the largest ratio of consecutive eigenvalues.
    LpcaMaxgap,
    /// MLE (Levina-Bickel).
    Mle,
}

impl LidArg {
    fn estimator(self) -> LidEstimator {
        match self {
            LidArg::Lpca => LidEstimator::Lpca,
            LidArg::LpcaMaxgap => LidEstimator::LpcaMaxGap,
            LidArg::Mle => LidEstimator::Mle,
        }
    }

    /// The default `k`: skdim's pointwise 100 for lPCA, METHODS.md's 20 for MLE.
    fn default_k(self) -> usize {
        match self {
            LidArg::Lpca | LidArg::LpcaMaxgap => 100,
            LidArg::Mle => 20,
        }
    }
}

fn bad(path: &Path, line: usize, message: impl Into<String>) -> CliError {
    CliError::Points {
        path: path.to_path_buf(),
        line,
        message: message.into(),
    }
}

/// Read a point file: one point a line, coordinates separated by commas, no header;
/// blank lines are skipped. Returns the points (row-major) and the dimension.
pub fn read_points(path: &Path, text: &str) -> Result<(Vec<f64>, usize), CliError> {
    let mut points = Vec::new();
    let mut dim: Option<usize> = None;
    let mut n = 0usize;
    for (i, line) in text.lines().enumerate() {
        let line_no = i + 1;
        let line = line.trim();
        if line.is_empty() {
            continue;
        }
        let mut row = Vec::new();
        for (c, field) in line.split(',').enumerate() {
            let f = field.trim();
            let v: f64 = f.parse().map_err(|_| {
                bad(
                    path,
                    line_no,
                    format!("column {}: “{}” is not a number", c + 1, clip(f)),
                )
            })?;
            if !v.is_finite() {
                return Err(bad(
                    path,
                    line_no,
                    format!("column {}: {v} is not finite", c + 1),
                ));
            }
            row.push(v);
        }
        match dim {
            None => {
                if row.len() > limits::LID_DIM.1 {
                    return Err(bad(
                        path,
                        line_no,
                        format!(
                            "{} coordinates, more than the limit of {}",
                            row.len(),
                            limits::LID_DIM.1
                        ),
                    ));
                }
                dim = Some(row.len());
            }
            Some(d) if d != row.len() => {
                return Err(bad(
                    path,
                    line_no,
                    format!("{} coordinates, but the first point has {d}", row.len()),
                ));
            }
            Some(_) => {}
        }
        n += 1;
        if n > limits::LID_POINTS {
            return Err(bad(
                path,
                line_no,
                format!("more than {} points", limits::LID_POINTS),
            ));
        }
        points.extend(row);
    }
    let dim = dim.ok_or_else(|| bad(path, 1, "no points"))?;
    Ok((points, dim))
}

fn clip(s: &str) -> String {
    s.chars().take(40).collect()
}

/// `mnemo lid`.
pub fn lid(
    points: PathBuf,
    estimator: LidArg,
    k: Option<usize>,
    out: PathBuf,
) -> Result<(), CliError> {
    let text = fs::read_to_string(&points).map_err(io_err(&points))?;
    let (pts, dim) = read_points(&points, &text)?;
    let n = pts.len() / dim;
    let k = k.unwrap_or(estimator.default_k());
    if !(limits::K.0..=limits::K.1).contains(&k) {
        return Err(CliError::Output(format!(
            "--k {k} is outside the allowed range {}..={}",
            limits::K.0,
            limits::K.1
        )));
    }
    if n < k + 1 {
        return Err(bad(
            &points,
            text.lines().count().max(1),
            format!("{n} points, but --k {k} needs at least {}", k + 1),
        ));
    }
    let values = geometry::estimate_lid(&pts, dim, estimator.estimator(), k);
    fs::create_dir_all(&out).map_err(io_err(&out))?;
    let path = out.join("lid.csv");
    fs::write(&path, geo_export::lid_table(&values)?).map_err(io_err(&path))?;
    let defined: Vec<f64> = values.iter().flatten().copied().collect();
    let mean = if defined.is_empty() {
        f64::NAN
    } else {
        defined.iter().sum::<f64>() / defined.len() as f64
    };
    println!(
        "{n} points in {dim} dimensions, {:?} with k = {k}: mean LID {mean:.4} over {} points, {} undefined",
        estimator,
        defined.len(),
        n - defined.len()
    );
    if estimator == LidArg::Mle
        && let Some(g) = estimators::mle_global(&values)
    {
        println!("MLE aggregate (MacKay-Ghahramani, 1/mean(1/m)): {g:.4}");
    }
    Ok(())
}

/// `mnemo spec --geometry`.
pub fn print_demo() -> Result<(), CliError> {
    crate::emit(&mnemo_core::ExperimentSpec::geometry_demo().to_json())
}

fn write(out: &Path, name: &str, text: &str) -> Result<(), CliError> {
    let path = out.join(name);
    fs::write(&path, text).map_err(io_err(&path))
}

/// One representative training point per region (the first), for the FLIPD curve.
fn curve_points(r: &GeometryResult) -> Vec<usize> {
    Region::ALL
        .iter()
        .filter_map(|&reg| r.train.iter().position(|p| p.region == reg))
        .collect()
}

/// `mnemo geometry`.
pub fn run(
    spec_path: PathBuf,
    out: PathBuf,
    backend: BackendKind,
    quiet: bool,
) -> Result<(), CliError> {
    let spec = read_spec(&spec_path)?;
    let dev = device(backend)?;
    let run = GeometryRun::new(&spec, &dev)?;
    let g = spec
        .geometry
        .clone()
        .ok_or(geometry::GeometryError::NoSettings)?;
    eprintln!(
        "{} training points ({}, D = {}), {} steps, {} samples",
        run.data().len(),
        g.data.manifold.name(),
        run.data().dim,
        g.training.steps,
        g.samples
    );
    fs::create_dir_all(&out).map_err(io_err(&out))?;
    let total = run.progress().total;
    let bar = if quiet {
        ProgressBar::hidden()
    } else {
        ProgressBar::new(total as u64)
    };
    bar.set_style(
        ProgressStyle::with_template("{bar:40} {pos}/{len}  {msg}  eta {eta}")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    let start = Instant::now();
    let mut trained_at: Option<f64> = None;
    let result = geometry::run_blocking(run, |p| {
        bar.set_position(p.done as u64);
        bar.set_message(format!(
            "{:?} loss {:.4}",
            p.phase,
            p.loss.unwrap_or(f32::NAN)
        ));
        if p.phase != geometry::Phase::Train && trained_at.is_none() {
            trained_at = Some(start.elapsed().as_secs_f64());
        }
        ControlFlow::Continue(())
    })?
    .ok_or_else(|| CliError::Output("the run was stopped".into()))?;
    bar.finish_and_clear();
    let seconds = start.elapsed().as_secs_f64();
    for (name, csv) in geo_export::tables(&result)? {
        write(&out, name, &csv)?;
    }
    let json = serde_json::json!({
        "result": result,
        "train_seconds": trained_at,
        "total_seconds": seconds,
    });
    write(&out, "geometry.json", &crate::json_doc(&json)?)?;
    let size = (900, 700);
    let pairs: Vec<(usize, usize)> = if result.dim == 2 {
        vec![(0, 1)]
    } else {
        vec![(0, 1), (0, 2), (1, 2)]
    };
    for (colour, key) in [(LidColour::Flipd, "flipd"), (LidColour::True, "true")] {
        for &(a, b) in &pairs {
            let name = if result.dim == 2 {
                format!("scatter_{key}.svg")
            } else {
                format!("scatter_{key}_x{a}x{b}.svg")
            };
            write(
                &out,
                &name,
                &svg_of(size, |area| scatter_chart(area, &result, colour, (a, b))),
            )?;
        }
    }
    let pts = curve_points(&result);
    write(
        &out,
        "flipd_curve.svg",
        &svg_of((900, 560), |area| flipd_curve_chart(area, &result, &pts)),
    )?;
    write(
        &out,
        "estimators.svg",
        &svg_of((900, 560), |area| estimator_chart(area, &result)),
    )?;
    let f = |v: Option<f64>| v.map_or("n/a".to_string(), |x| format!("{x:.3}"));
    println!(
        "trained in {:.1} s, everything in {seconds:.1} s (final loss {:.4}, trace {})",
        trained_at.unwrap_or(seconds),
        result.losses.last().copied().unwrap_or(f32::NAN),
        if result.exact_trace {
            "exact"
        } else {
            "Hutchinson"
        }
    );
    println!("region      n  true  lPCA    MLE     FLIPD   normal bundle");
    for s in &result.regions {
        println!(
            "{:<10} {:>3}  {:>4}  {:>6}  {:>6}  {:>6}  {:>6}",
            s.region.key(),
            s.n,
            s.true_lid,
            f(s.lpca),
            f(s.mle),
            f(s.flipd),
            f(s.normal_bundle)
        );
    }
    let c = result.class_counts();
    let classes: Vec<String> = MemClass::ALL
        .iter()
        .zip(c)
        .map(|(m, n)| format!("{} {n}", m.label()))
        .collect();
    println!(
        "classes: {}; samples {} ({} copies, threshold {:.4})",
        classes.join(", "),
        result.samples.len(),
        result.copies(),
        result.copy_threshold
    );
    Ok(())
}
