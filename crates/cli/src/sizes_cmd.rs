//! `mnemo sizes`: the memorisation profile (`mnemo profile`'s experiment) at several model
//! widths, with the persistent-memorisation curves overlaid (the browser's "Compare model
//! sizes"). The widths are independent jobs: `--shard I/N` runs widths I-1, I-1+N, ...

use std::ops::ControlFlow;
use std::path::{Path, PathBuf};

use indicatif::{ProgressBar, ProgressStyle};
use mnemo_core::train::{Trainer, block_on, run_blocking};
use mnemo_core::{BackendKind, ExperimentSpec};
use mnemo_measures::did::DidResult;
use mnemo_plots::did::{event_series, persistent_chart, svg_of};

use crate::shard::{self, Shard, ShardSet};
use crate::{CliError, device, did_cmd, read_spec};

/// The shards' name for this command.
pub const COMMAND: &str = "sizes";

/// Arguments of `mnemo sizes`.
#[derive(clap::Args)]
pub struct SizesArgs {
    /// The experiment spec (see `mnemo spec --example`); its `model.d_model` is replaced
    /// by each width.
    #[arg(long, value_name = "SPEC.json")]
    pub spec: PathBuf,
    /// The model widths (d_model), comma-separated.
    #[arg(long, value_name = "W1,W2,...", default_value = "32,64,128")]
    pub widths: String,
    /// Output directory.
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,
    #[command(flatten)]
    pub backend: crate::BackendArg,
    /// No progress bar.
    #[arg(long)]
    pub quiet: bool,
    /// Run only shard I of N of the widths (widths I-1, I-1+N, ...) and write a shard
    /// folder for `mnemo merge`.
    #[arg(long, value_name = "I/N")]
    pub shard: Option<Shard>,
    /// Widths trained at once, one per thread (the results do not depend on it; default:
    /// all cores but one when there are more than two). With more than one, no progress
    /// bar: a line per width as it finishes.
    #[arg(long, value_name = "N")]
    pub threads: Option<usize>,
}

/// The specs of each width, checked before any work.
fn width_specs(spec: &ExperimentSpec, widths: &str) -> Result<Vec<ExperimentSpec>, CliError> {
    let mut out: Vec<ExperimentSpec> = Vec::new();
    for w in widths.split(',').map(str::trim).filter(|w| !w.is_empty()) {
        let d: usize = w
            .parse()
            .map_err(|_| CliError::Output(format!("--widths: {w:?} is not a whole number")))?;
        if out.iter().any(|s| s.model.d_model == d) {
            return Err(CliError::Output(format!("--widths: {d} is given twice")));
        }
        let mut s = spec.clone();
        s.model.d_model = d;
        s.validate().map_err(|source| CliError::Spec {
            path: PathBuf::from(format!("--widths {d}")),
            source,
        })?;
        out.push(s);
    }
    if out.is_empty() {
        return Err(CliError::Output("--widths names no width".into()));
    }
    Ok(out)
}

/// Train `spec` in memory and estimate its memorisation profile, as `mnemo profile` does.
fn profile_of(
    spec: &ExperimentSpec,
    backend: BackendKind,
    quiet: bool,
) -> Result<DidResult, CliError> {
    let dev = device(backend)?;
    let mut trainer = Trainer::new(spec.clone(), dev.clone())?;
    let bar = if quiet {
        ProgressBar::hidden()
    } else {
        ProgressBar::new(trainer.total_steps() as u64)
    };
    bar.set_style(
        ProgressStyle::with_template("{bar:40} {pos}/{len} steps  {msg}  eta {eta}")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    let mut kept = Vec::new();
    run_blocking(
        &mut trainer,
        |p| {
            bar.set_position(p.step as u64);
            bar.set_message(format!("d_model {}", spec.model.d_model));
            ControlFlow::Continue(())
        },
        |ck| {
            kept.push(ck);
            Ok(())
        },
    )?;
    bar.finish_and_clear();
    let settings = spec.profile.clone().unwrap_or_default();
    let steps: Vec<usize> = kept.iter().map(|c| c.step).collect();
    let plan = mnemo_measures::profile::plan_panel(
        trainer.corpus(),
        &trainer.order(),
        &steps,
        &settings,
        spec.seed,
    )?;
    let panel = block_on(mnemo_measures::profile::build_panel(
        &plan,
        &kept,
        trainer.corpus(),
        settings.outcome,
        &dev,
        |_, _| {},
    ))?;
    Ok(mnemo_measures::profile::estimate_profile(
        &panel, &settings, spec.seed,
    )?)
}

/// `mnemo sizes`.
pub fn run(args: SizesArgs) -> Result<(), CliError> {
    let spec = read_spec(&args.spec)?;
    let specs = width_specs(&spec, &args.widths)?;
    let widths: Vec<usize> = specs.iter().map(|s| s.model.d_model).collect();
    let jobs: Vec<usize> = match args.shard {
        Some(s) => s.jobs(specs.len()),
        None => (0..specs.len()).collect(),
    };
    let threads = crate::threads::count(args.threads);
    let quiet = args.quiet || threads > 1;
    let results = crate::threads::map_jobs(&jobs, threads, |j| {
        let start = std::time::Instant::now();
        let r = profile_of(&specs[j], args.backend.backend.into(), quiet)?;
        eprintln!(
            "d_model {}: {} cohorts, {} checkpoints in {:.1} s",
            widths[j],
            r.cohorts.len(),
            r.checkpoints,
            start.elapsed().as_secs_f64()
        );
        Ok(r)
    })?;
    if let Some(s) = args.shard {
        return shard::write(
            &args.out,
            COMMAND,
            &spec,
            &serde_json::json!({ "widths": widths }),
            s,
            specs.len(),
            &results,
        );
    }
    let results: Vec<DidResult> = results.into_iter().map(|r| r.1).collect();
    write_outputs(&spec, &widths, &results, &args.out)
}

/// `mnemo merge` of sizes shards: the unsharded run's files.
pub fn merge(set: &ShardSet, out: &Path) -> Result<(), CliError> {
    let options = std::fs::read_to_string(set.dirs[0].join("options.json"))
        .map_err(crate::io_err(&set.dirs[0]))?;
    let options: serde_json::Value =
        serde_json::from_str(&options).map_err(|e| CliError::Output(e.to_string()))?;
    let widths: Vec<usize> = serde_json::from_value(options["widths"].clone())
        .map_err(|e| CliError::Output(format!("options.json: {e}")))?;
    let results: Vec<DidResult> = set.results()?;
    if results.len() != widths.len() {
        return Err(CliError::Output(format!(
            "merge: the shards hold {} profiles for {} widths",
            results.len(),
            widths.len()
        )));
    }
    write_outputs(&set.spec, &widths, &results, out)?;
    eprintln!(
        "merged {} widths from {} shards; wrote {}",
        widths.len(),
        set.dirs.len(),
        out.display()
    );
    Ok(())
}

/// `persistent.csv` (every width's persistent-memorisation curve, as charted),
/// `persistent.svg` (the overlay), `spec.json`, and each width's profile files (those of
/// `mnemo profile` but the panel) in `d_model_W/`.
fn write_outputs(
    spec: &ExperimentSpec,
    widths: &[usize],
    results: &[DidResult],
    out: &Path,
) -> Result<(), CliError> {
    let labelled: Vec<(String, &DidResult)> = widths
        .iter()
        .zip(results)
        .map(|(w, r)| (format!("d_model {w}"), r))
        .collect();
    let mut csv = csv::Writer::from_writer(Vec::new());
    csv.write_record(["d_model", "event_time", "memorisation", "lower", "upper"])?;
    for (w, r) in widths.iter().zip(results) {
        for p in event_series(r, "").points {
            csv.write_record([
                w.to_string(),
                p.x.to_string(),
                p.value.to_string(),
                p.lower.to_string(),
                p.upper.to_string(),
            ])?;
        }
    }
    let csv = String::from_utf8(
        csv.into_inner()
            .map_err(|e| CliError::Output(e.to_string()))?,
    )
    .map_err(|e| CliError::Output(e.to_string()))?;
    let files = vec![
        ("persistent.csv", csv),
        (
            "persistent.svg",
            svg_of((800, 480), |a| persistent_chart(a, &labelled)),
        ),
        ("spec.json", spec.to_json()),
    ];
    for (w, r) in widths.iter().zip(results) {
        did_cmd::write_all(&out.join(format!("d_model_{w}")), &did_cmd::outputs(r)?)?;
    }
    did_cmd::write_all(out, &files)
}
