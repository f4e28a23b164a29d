//! `mnemo did` and `mnemo profile`: memorisation profiles by difference-in-differences.
//! Every output is computed in memory first and written only when all of it succeeded,
//! so an error never leaves half a result behind.

use std::fs;
use std::path::{Path, PathBuf};

use mnemo_measures::did::{DidResult, Panel};
use mnemo_plots::did::{
    instantaneous_chart, persistent_chart, profile_heatmap, residual_chart, simple_chart, svg_of,
};

use mnemo_core::BackendKind;

use crate::{CliError, TrainArgs};

/// Every file a profile writes, as (name, contents): the tables, the whole result as
/// JSON, and an SVG per chart.
pub fn outputs(result: &DidResult) -> Result<Vec<(&'static str, String)>, CliError> {
    let mut files = mnemo_measures::export::tables(result)?;
    let size = (800, 480);
    files.extend([
        ("result.json", crate::json_doc(result)?),
        ("profile.svg", svg_of(size, |a| profile_heatmap(a, result))),
        (
            "persistent.svg",
            svg_of(size, |a| persistent_chart(a, &[(String::new(), result)])),
        ),
        (
            "instantaneous.svg",
            svg_of(size, |a| instantaneous_chart(a, result)),
        ),
        ("residual.svg", svg_of(size, |a| residual_chart(a, result))),
        ("simple.svg", svg_of(size, |a| simple_chart(a, result))),
    ]);
    Ok(files)
}

/// A profile's files ([`outputs`]) and the panel it was estimated from, panel.csv.
pub fn profile_outputs(
    result: &DidResult,
    panel: &Panel,
) -> Result<Vec<(&'static str, String)>, CliError> {
    let mut files = outputs(result)?;
    let mut panel_csv = Vec::new();
    panel
        .write_csv(&mut panel_csv)
        .map_err(|e| CliError::Output(e.to_string()))?;
    files.push((
        "panel.csv",
        String::from_utf8(panel_csv).map_err(|e| CliError::Output(e.to_string()))?,
    ));
    Ok(files)
}

/// Write `files` into `out` (created if missing).
pub fn write_all(out: &Path, files: &[(&str, String)]) -> Result<(), CliError> {
    fs::create_dir_all(out).map_err(|source| CliError::Io {
        path: out.to_path_buf(),
        source,
    })?;
    for (name, contents) in files {
        let path = out.join(name);
        fs::write(&path, contents).map_err(|source| CliError::Io { path, source })?;
    }
    Ok(())
}

/// Read a panel CSV.
pub fn read_panel(path: &PathBuf) -> Result<Panel, CliError> {
    let file = fs::File::open(path).map_err(|source| CliError::Io {
        path: path.clone(),
        source,
    })?;
    Panel::from_csv(file).map_err(|e| CliError::Panel {
        path: path.clone(),
        message: e.to_string(),
    })
}

/// Run `mnemo did`: estimate a panel CSV's profile and write every output.
pub fn run(
    panel: PathBuf,
    out: PathBuf,
    draws: usize,
    seed: u64,
    alpha: f64,
) -> Result<(), CliError> {
    let panel = read_panel(&panel)?;
    let options = mnemo_measures::did::DidOptions {
        alpha,
        draws,
        seed,
        ..Default::default()
    };
    let start = std::time::Instant::now();
    let result = mnemo_measures::did::estimate(&panel, &options)?;
    let elapsed = start.elapsed().as_secs_f64();
    let files = outputs(&result)?;
    write_all(&out, &files)?;
    eprintln!(
        "{} instances ({} never trained), {} cohorts, {} checkpoints: {} cells estimated in {elapsed:.3} s; wrote {}",
        result.instances,
        result.never_trained,
        result.cohorts.len(),
        result.checkpoints,
        result.cells.len(),
        out.display()
    );
    Ok(())
}

/// Run `mnemo profile`: train, evaluate the panel at every checkpoint, estimate.
pub fn profile(args: TrainArgs) -> Result<(), CliError> {
    let out = args.out.clone();
    let kind: BackendKind = args.backend.into();
    let (trainer, checkpoints) = crate::train(args)?;
    let spec = trainer.spec().clone();
    let settings = spec.profile.clone().unwrap_or_default();
    let steps: Vec<usize> = checkpoints.iter().map(|c| c.step).collect();
    let plan = mnemo_measures::profile::plan_panel(
        trainer.corpus(),
        &trainer.order(),
        &steps,
        &settings,
        spec.seed,
    )?;
    let device = crate::device(kind)?;
    eprintln!(
        "evaluating {} instances at {} checkpoints",
        plan.ids.len(),
        checkpoints.len()
    );
    let panel = mnemo_core::train::block_on(mnemo_measures::profile::build_panel(
        &plan,
        &checkpoints,
        trainer.corpus(),
        settings.outcome,
        &device,
        |_, _| {},
    ))?;
    let result = mnemo_measures::profile::estimate_profile(&panel, &settings, spec.seed)?;
    write_all(&out, &profile_outputs(&result, &panel)?)?;
    let inst: Vec<String> = result
        .instantaneous
        .iter()
        .map(|c| format!("{:.3}", c.memorisation))
        .collect();
    eprintln!(
        "profile: {} cohorts; instantaneous memorisation per cohort (nats/token): {}",
        result.cohorts.len(),
        inst.join(" ")
    );
    Ok(())
}
