//! `mnemo exposure`: canary exposure (the Secret Sharer, METHODS.md section 7). Trains
//! the spec (its `data.canaries` inserted; the `train` outputs written) or reads a
//! checkpoint of it, ranks every canary's secret among the format's candidates and
//! writes exposure.csv, exposure.json, exposure.svg and perplexity.svg.

use std::path::PathBuf;

use clap::{Args, ValueEnum};
use mnemo_core::{Corpus, Gpt, TrainError};
use mnemo_measures::exposure::{ExposureMethod, ExposureResult, ExposureRun, format_rank};
use mnemo_plots::did::svg_of;
use mnemo_plots::exposure::{exposure_chart, perplexity_chart, space_label};

use crate::{CliError, TrainArgs, did_cmd, extract_cmd};

/// How ranks are found.
#[derive(Clone, Copy, ValueEnum)]
pub enum MethodArg {
    /// Exact up to the spec's exact_limit, extrapolated above.
    Auto,
    /// Score every candidate.
    Exact,
    /// Fit a skew-normal to sampled candidates.
    Extrapolated,
}

/// The flags of `mnemo exposure`.
#[derive(Args)]
pub struct ExposureArgs {
    #[command(flatten)]
    run: TrainArgs,
    /// Measure this checkpoint (from `mnemo train` on the same spec) instead of training.
    #[arg(long, value_name = "CKPT.safetensors")]
    checkpoint: Option<PathBuf>,
    /// Exact or extrapolated ranks (default: the spec's exposure.method, auto).
    #[arg(long, value_enum)]
    method: Option<MethodArg>,
}

/// Every file written, as (name, contents).
pub fn outputs(result: &ExposureResult) -> Result<Vec<(&'static str, String)>, CliError> {
    Ok(vec![
        ("exposure.csv", result.csv()?),
        (
            "exposure.json",
            serde_json::to_string_pretty(result).map_err(|e| CliError::Output(e.to_string()))?,
        ),
        (
            "exposure.svg",
            svg_of((800, 480), |a| exposure_chart(a, result)),
        ),
        (
            "perplexity.svg",
            svg_of((800, 480), |a| perplexity_chart(a, result)),
        ),
    ])
}

/// The lines printed after a run.
pub fn report(result: &ExposureResult, seconds: f64) -> String {
    let mut lines = vec![format!(
        "exposure of {} canaries ({}, |R| = {}, largest exposure {:.2} bits), {} ranks from {} \
         scored candidates in {seconds:.2} s:",
        result.canaries.len(),
        result.format,
        space_label(result.space),
        result.max_exposure,
        result.method.key(),
        result.scored
    )];
    for c in &result.canaries {
        lines.push(format!(
            "  x{:<4} {:<32} log-perplexity {:>7.2} bits, rank {:>10}, exposure {:>6.2} bits",
            c.repetitions,
            c.text,
            c.log_perplexity,
            format_rank(c.rank),
            c.exposure
        ));
    }
    lines.join("\n")
}

/// Run `mnemo exposure`.
pub fn run(args: ExposureArgs) -> Result<(), CliError> {
    let mut spec = crate::read_spec(&args.run.spec)?;
    if let Some(m) = args.method {
        let mut e = spec.exposure.unwrap_or_default();
        e.method = match m {
            MethodArg::Auto => ExposureMethod::Auto,
            MethodArg::Exact => ExposureMethod::Exact,
            MethodArg::Extrapolated => ExposureMethod::Extrapolated,
        };
        spec.exposure = Some(e);
    }
    if spec.data.canaries.is_none() {
        return Err(CliError::Output(
            "the spec has no data.canaries to measure (see `mnemo spec --canary`)".into(),
        ));
    }
    spec.validate().map_err(|source| CliError::Spec {
        path: args.run.spec.clone(),
        source,
    })?;
    // Check the settings against the format before any training.
    if let (Some(set), e) = (&spec.data.canaries, spec.exposure.unwrap_or_default()) {
        let bad = |source| CliError::Spec {
            path: args.run.spec.clone(),
            source,
        };
        let space = set.parsed().map_err(bad)?.candidates();
        e.exact_for(space).map_err(bad)?;
    }
    let device = crate::device(args.run.backend.into())?;
    let (corpus, model) = match &args.checkpoint {
        Some(path) => {
            let corpus = Corpus::build(&spec.data, spec.tokenizer, spec.model.context, spec.seed)?;
            let ck = extract_cmd::load_checkpoint(path, &spec, &corpus)?;
            let model =
                Gpt::from_checkpoint(&ck, &device).map_err(|source| CliError::Checkpoint {
                    path: path.clone(),
                    source,
                })?;
            (corpus, model)
        }
        None => {
            let (trainer, checkpoints) = crate::train_spec(spec.clone(), &args.run)?;
            let last = checkpoints
                .last()
                .ok_or_else(|| CliError::Output("training saved no checkpoint".into()))?;
            let model = Gpt::from_checkpoint(last, &device).map_err(TrainError::from)?;
            (trainer.corpus().clone(), model)
        }
    };
    let start = std::time::Instant::now();
    let mut run = ExposureRun::new(&spec, &corpus, model)?;
    while !run.is_done() {
        mnemo_core::train::block_on(run.step())?;
    }
    let result = run.finish()?;
    let seconds = start.elapsed().as_secs_f64();
    did_cmd::write_all(&args.run.out, &outputs(&result)?)?;
    eprintln!(
        "{}\nwrote {}",
        report(&result, seconds),
        args.run.out.display()
    );
    Ok(())
}
