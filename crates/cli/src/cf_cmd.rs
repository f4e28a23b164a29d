//! `mnemo counterfactual` and `mnemo bench counterfactual`: counterfactual memorisation
//! from an ensemble of models trained on random subsets.

use std::ops::ControlFlow;
use std::path::PathBuf;

use indicatif::{ProgressBar, ProgressStyle};
use mnemo_core::{BackendKind, Corpus, ExperimentSpec};
use mnemo_measures::counterfactual::{CounterfactualResult, plan_ensemble, run_ensemble_blocking};
use mnemo_plots::counterfactual::{in_out_scatter, mem_histogram};
use mnemo_plots::did::svg_of;

use crate::{CliError, device, did_cmd, read_spec};

/// The spec with its counterfactual section (defaults when absent), `models` overriding
/// the number of models; validated.
fn with_settings(
    mut spec: ExperimentSpec,
    models: Option<usize>,
) -> Result<ExperimentSpec, CliError> {
    let mut settings = spec.counterfactual.clone().unwrap_or_default();
    if let Some(m) = models {
        settings.models = m;
    }
    spec.counterfactual = Some(settings);
    spec.validate().map_err(|source| CliError::Spec {
        path: PathBuf::from("--models"),
        source,
    })?;
    Ok(spec)
}

fn run(
    spec: &ExperimentSpec,
    backend: BackendKind,
    quiet: bool,
) -> Result<(Corpus, CounterfactualResult, f64), CliError> {
    let corpus = Corpus::build(&spec.data, spec.tokenizer, spec.model.context, spec.seed)
        .map_err(mnemo_core::TrainError::from)?;
    let settings = spec.counterfactual.clone().unwrap_or_default();
    let plan = plan_ensemble(&corpus, &settings, spec.seed)?;
    let bar = if quiet {
        ProgressBar::hidden()
    } else {
        ProgressBar::new(plan.models() as u64)
    };
    bar.set_style(
        ProgressStyle::with_template("{bar:40} model {pos}/{len}  eta {eta}")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    let start = std::time::Instant::now();
    let result = run_ensemble_blocking(spec, &corpus, &plan, &device(backend)?, |j, _| {
        bar.set_position(j as u64);
        ControlFlow::Continue(())
    })?;
    bar.finish_and_clear();
    Ok((corpus, result, start.elapsed().as_secs_f64()))
}

/// `mnemo counterfactual`.
pub fn counterfactual(
    spec_path: PathBuf,
    out: PathBuf,
    models: Option<usize>,
    backend: BackendKind,
    quiet: bool,
) -> Result<(), CliError> {
    let spec = with_settings(read_spec(&spec_path)?, models)?;
    let settings = spec.counterfactual.clone().unwrap_or_default();
    eprintln!(
        "training {} models, each on {:.0}% of the training texts",
        settings.models,
        settings.fraction * 100.0
    );
    let (_, result, secs) = run(&spec, backend, quiet)?;
    let mut files = mnemo_measures::export::counterfactual_tables(&result)?;
    let size = (800, 480);
    files.extend([
        ("counterfactual.json", crate::json_doc(&result)?),
        (
            "mem_histogram.svg",
            svg_of(size, |a| mem_histogram(a, &result)),
        ),
        ("in_out.svg", svg_of(size, |a| in_out_scatter(a, &result))),
        ("spec.json", spec.to_json()),
    ]);
    did_cmd::write_all(&out, &files)?;
    eprintln!(
        "{} models in {secs:.1} s; mem defined for {} of {} training texts. Most memorised:",
        result.models,
        result.defined(),
        result.instances.len()
    );
    for &i in result.ranked().iter().take(5) {
        let inst = &result.instances[i];
        if let Some(m) = inst.mem.diff {
            eprintln!(
                "  {m:+.3}  #{} (x{})  {}",
                inst.instance, inst.copies, inst.text
            );
        }
    }
    eprintln!("wrote {}", out.display());
    Ok(())
}

/// `mnemo bench counterfactual`: time per ensemble member and for the whole ensemble of
/// the counterfactual demo on the native CPU backend.
pub fn bench(models: usize) -> Result<(), CliError> {
    let spec = with_settings(ExperimentSpec::counterfactual_demo(), Some(models))?;
    let (_, result, secs) = run(&spec, BackendKind::Flex, true)?;
    println!(
        "counterfactual demo ({} models, 2 layers, d_model {}, {} epochs on half the texts) on {}",
        result.models,
        spec.model.d_model,
        match spec.training.duration {
            mnemo_core::spec::Duration::Epochs(e) => e,
            mnemo_core::spec::Duration::Steps(s) => s,
        },
        BackendKind::Flex.label()
    );
    println!(
        "  per member (train + score): {:8.1} ms",
        secs * 1000.0 / result.models.max(1) as f64
    );
    println!("  whole ensemble:             {secs:8.2} s");
    Ok(())
}
