//! `mnemo exposure`: canary exposure (the Secret Sharer, METHODS.md section 7). Trains
//! the spec (its `data.canaries` inserted; the `train` outputs written) or reads a
//! checkpoint of it, ranks every canary's secret among the format's candidates and
//! writes exposure.csv, exposure.json, exposure.svg and perplexity.svg. With
//! `--unlearn METHOD`, it then applies that post-hoc unlearning method with the canaries
//! as the forget set (`exposure::forget`), ranks again and writes exposure_after.csv and
//! exposure_after.json; exposure.svg shows both.

use std::path::PathBuf;

use clap::{Args, ValueEnum};
use mnemo_core::spec::mitigation::{Kind, Method, MethodSettings};
use mnemo_core::{Corpus, Gpt, TrainError};
use mnemo_measures::exposure::forget::unlearned_run;
use mnemo_measures::exposure::{
    ExposureError, ExposureMethod, ExposureResult, ExposureRun, format_rank,
};
use mnemo_measures::unlearn::StepProgress;
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
    /// Then unlearn the canaries with this post-hoc method (a neuron or weight method of
    /// `mnemo mitigate`: activations, durable, subnet, balanced-subnet, ...) and measure
    /// again.
    #[arg(long, value_name = "METHOD")]
    unlearn: Option<String>,
    /// The unlearning method's ratio (default: its reference default).
    #[arg(long, requires = "unlearn")]
    ratio: Option<f64>,
}

/// Every file written, as (name, contents); `after` is the measurement after an
/// unlearning method (its label).
pub fn outputs(
    result: &ExposureResult,
    after: Option<(&str, &ExposureResult)>,
) -> Result<Vec<(&'static str, String)>, CliError> {
    let json = |r: &ExposureResult| crate::json_doc(r);
    let mut files = vec![
        ("exposure.csv", result.csv()?),
        ("exposure.json", json(result)?),
        (
            "exposure.svg",
            svg_of((800, 480), |a| exposure_chart(a, result, after)),
        ),
        (
            "perplexity.svg",
            svg_of((800, 480), |a| perplexity_chart(a, result)),
        ),
    ];
    if let Some((_, a)) = after {
        files.push(("exposure_after.csv", a.csv()?));
        files.push(("exposure_after.json", json(a)?));
    }
    Ok(files)
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
    let unlearn = match &args.unlearn {
        Some(name) => {
            let method = Method::from_name(name).map_err(|e| CliError::Output(e.to_string()))?;
            if matches!(method.kind(), Kind::Regulariser | Kind::FineTune) {
                return Err(CliError::Output(
                    ExposureError::Trains(method.name()).to_string(),
                ));
            }
            let mut s = MethodSettings::defaults(method);
            if let Some(r) = args.ratio {
                s.ratio = r;
            }
            s.validate().map_err(|e| CliError::Output(e.to_string()))?;
            Some(s)
        }
        None => None,
    };
    let device = crate::device(args.run.backend.into())?;
    let (corpus, ck, model) = match &args.checkpoint {
        Some(path) => {
            let corpus = Corpus::build(&spec.data, spec.tokenizer, spec.model.context, spec.seed)?;
            let ck = extract_cmd::load_checkpoint(path, &spec, &corpus)?;
            let model =
                Gpt::from_checkpoint(&ck, &device).map_err(|source| CliError::Checkpoint {
                    path: path.clone(),
                    source,
                })?;
            (corpus, ck, model)
        }
        None => {
            let (trainer, checkpoints) = crate::train_spec(spec.clone(), &args.run)?;
            let last = checkpoints
                .last()
                .ok_or_else(|| CliError::Output("training saved no checkpoint".into()))?
                .clone();
            let model = Gpt::from_checkpoint(&last, &device).map_err(TrainError::from)?;
            (trainer.corpus().clone(), last, model)
        }
    };
    let start = std::time::Instant::now();
    let mut run = ExposureRun::new(&spec, &corpus, model)?;
    while !run.is_done() {
        mnemo_core::train::block_on(run.step())?;
    }
    let result = run.finish()?;
    let seconds = start.elapsed().as_secs_f64();
    eprintln!("{}", report(&result, seconds));
    let after = match &unlearn {
        Some(settings) => {
            let start = std::time::Instant::now();
            let mut quiet = |_: StepProgress| std::ops::ControlFlow::Continue(());
            let (_, mut run) = mnemo_core::train::block_on(unlearned_run(
                &spec, &corpus, &ck, settings, &device, &mut quiet,
            ))?;
            while !run.is_done() {
                mnemo_core::train::block_on(run.step())?;
            }
            let after = run.finish()?;
            let label = format!("{} (ratio {})", settings.method.name(), settings.ratio);
            eprintln!(
                "after unlearning with {label}:\n{}",
                report(&after, start.elapsed().as_secs_f64())
            );
            Some((label, after))
        }
        None => None,
    };
    let after_ref = after.as_ref().map(|(l, r)| (l.as_str(), r));
    did_cmd::write_all(&args.run.out, &outputs(&result, after_ref)?)?;
    eprintln!("wrote {}", args.run.out.display());
    Ok(())
}
