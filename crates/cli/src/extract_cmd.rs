//! `mnemo extract`: extraction rates (METHODS.md section 3) of a trained model, on its
//! training instances and on the held-out baseline. The model is either trained from the
//! spec first (writing the `train` outputs as `mnemo train` does) or read from a
//! checkpoint, which must fit the spec's corpus. The extraction files are computed in
//! memory and written only when all of them succeeded.

use std::fs;
use std::path::{Path, PathBuf};

use mnemo_core::spec::ExtractionSpec;
use mnemo_core::{BackendKind, Checkpoint, Corpus, ExperimentSpec, Gpt, TrainError};
use mnemo_measures::extraction::{ExtractionResult, extract, extraction_csv};
use mnemo_plots::did::svg_of;
use mnemo_plots::extraction::extraction_chart;

use crate::{CliError, TrainArgs, did_cmd, io_err};

/// The settings: the spec's `extraction` section (defaults when absent), overridden by
/// `--prefix` and `--suffix`, checked against the limits.
pub fn settings(
    spec: &ExperimentSpec,
    prefix: Option<usize>,
    suffix: Option<usize>,
) -> Result<ExtractionSpec, CliError> {
    let mut settings = spec.extraction.unwrap_or_default();
    if let Some(k) = prefix {
        settings.prefix = k;
    }
    if let Some(s) = suffix {
        settings.suffix = s;
    }
    settings.validate().map_err(CliError::Settings)?;
    Ok(settings)
}

/// Read a checkpoint and check that it fits the spec's model and corpus.
pub fn load_checkpoint(
    path: &Path,
    spec: &ExperimentSpec,
    corpus: &Corpus,
) -> Result<Checkpoint, CliError> {
    let bytes = fs::read(path).map_err(io_err(path))?;
    let ck = Checkpoint::from_safetensors(&bytes).map_err(|source| CliError::Checkpoint {
        path: path.to_path_buf(),
        source,
    })?;
    ck.fits(&spec.model, corpus.tokenizer.vocab_size())
        .map_err(|message| CliError::Mismatch {
            path: path.to_path_buf(),
            message,
        })?;
    Ok(ck)
}

/// Every file extraction writes, as (name, contents).
pub fn outputs(result: &ExtractionResult) -> Result<Vec<(&'static str, String)>, CliError> {
    Ok(vec![
        ("extraction.csv", extraction_csv(&result.train)?),
        ("extraction_heldout.csv", extraction_csv(&result.heldout)?),
        ("extraction.json", crate::json_doc(&result.summary())?),
        (
            "extraction.svg",
            svg_of((800, 480), |a| extraction_chart(a, result)),
        ),
    ])
}

/// The lines printed after a run: lengths used and rates.
pub fn report(result: &ExtractionResult, seconds: f64) -> String {
    let summary = result.summary();
    let total = result.train.len() + result.heldout.len() + result.skipped;
    let mut lengths: Vec<String> = summary
        .lengths
        .iter()
        .take(6)
        .map(|l| {
            format!(
                "k={} s={} x{}",
                l.prefix_len,
                l.suffix_len,
                l.train + l.heldout
            )
        })
        .collect();
    if summary.lengths.len() > 6 {
        lengths.push(format!("and {} more", summary.lengths.len() - 6));
    }
    let pct = |v: f64| format!("{:.1}%", 100.0 * v);
    format!(
        "extraction: k = {} prefix, s = {} suffix tokens requested; {} of {total} instances \
         scaled down to their length, {} too short to split; lengths used: {}\n\
         training instances (n = {}): exact {}, fractional {}; held-out (n = {}): exact {}, \
         fractional {}; decoded in {seconds:.2} s",
        result.prefix,
        result.suffix,
        result.scaled,
        result.skipped,
        if lengths.is_empty() {
            "none".to_string()
        } else {
            lengths.join(", ")
        },
        result.train_rates.n,
        pct(result.train_rates.exact_rate),
        pct(result.train_rates.fractional_rate),
        result.heldout_rates.n,
        pct(result.heldout_rates.exact_rate),
        pct(result.heldout_rates.fractional_rate),
    )
}

/// Run `mnemo extract`.
pub fn run(
    args: TrainArgs,
    checkpoint: Option<PathBuf>,
    hf: Option<PathBuf>,
    prefix: Option<usize>,
    suffix: Option<usize>,
) -> Result<(), CliError> {
    let spec = crate::read_spec(&args.spec)?;
    let settings = settings(&spec, prefix, suffix)?;
    let kind: BackendKind = args.backend.into();
    let device = crate::device(kind)?;
    let out = args.out.clone();
    let (corpus, model) = match (checkpoint, hf) {
        (_, Some(dir)) => {
            // An imported model on the spec's texts and split, in its own tokens.
            let m = crate::hf_cmd::read_hf(&dir)?;
            let tokenizer = m
                .tokenizer
                .ok_or_else(|| CliError::Output(format!("{}: no tokenizer.json", dir.display())))?;
            let corpus = Corpus::build(&spec.data, spec.tokenizer, spec.model.context, spec.seed)?
                .retokenised(tokenizer, m.checkpoint.config.context)?;
            let model = Gpt::from_checkpoint(&m.checkpoint, &device).map_err(|source| {
                CliError::Checkpoint {
                    path: dir.clone(),
                    source,
                }
            })?;
            eprintln!(
                "{} ({:?}); the spec's {} training / {} held-out texts in its tokens",
                dir.display(),
                m.family,
                corpus.train.len(),
                corpus.heldout.len()
            );
            (corpus, model)
        }
        (Some(path), None) => {
            let corpus = Corpus::build(&spec.data, spec.tokenizer, spec.model.context, spec.seed)?;
            let ck = load_checkpoint(&path, &spec, &corpus)?;
            let model =
                Gpt::from_checkpoint(&ck, &device).map_err(|source| CliError::Checkpoint {
                    path: path.clone(),
                    source,
                })?;
            eprintln!(
                "checkpoint {} (step {}); {} training / {} held-out instances",
                path.display(),
                ck.step,
                corpus.train.len(),
                corpus.heldout.len()
            );
            (corpus, model)
        }
        (None, None) => {
            // Train first (writing the `train` outputs), then measure the final weights.
            let (trainer, checkpoints) = crate::train_spec(spec, &args)?;
            let last = checkpoints
                .last()
                .ok_or_else(|| CliError::Output("training saved no checkpoint".into()))?;
            let model = Gpt::from_checkpoint(last, &device).map_err(TrainError::from)?;
            (trainer.corpus().clone(), model)
        }
    };
    let start = std::time::Instant::now();
    let result = mnemo_core::train::block_on(extract(&model, &corpus, &settings))?;
    let seconds = start.elapsed().as_secs_f64();
    let files = outputs(&result)?;
    did_cmd::write_all(&out, &files)?;
    eprintln!("{}; wrote {}", report(&result, seconds), out.display());
    Ok(())
}
