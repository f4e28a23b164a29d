//! `mnemo softprompt` and `mnemo bench softprompt`: extraction with soft prompts
//! (METHODS.md section 3). The target is trained from the spec first (writing the `train`
//! outputs, as `mnemo extract` does) or read from a checkpoint that must fit the spec;
//! the settings and the pairs are checked before anything is trained or written, and the
//! soft-prompt files are computed in memory and written only when all of them succeeded.

use std::ops::ControlFlow;
use std::path::PathBuf;

use indicatif::{ProgressBar, ProgressStyle};
use mnemo_core::{BackendKind, Checkpoint, Corpus, ExperimentSpec, PromptPositions};
use mnemo_measures::softprompt::{
    Method, SoftPromptResult, SoftPromptRun, SoftPromptSpec, make_pairs, pairs_csv,
    prompt_loss_csv, run_blocking, softprompt_csv,
};
use mnemo_plots::did::svg_of;
use mnemo_plots::softprompt::{method_label, prompt_loss_chart, rates_chart};

use crate::{CliError, TrainArgs, did_cmd};

/// The settings: the spec's `softprompt` section (defaults when absent), checked.
fn settings(spec: &ExperimentSpec) -> Result<SoftPromptSpec, CliError> {
    let settings = spec.softprompt.unwrap_or_default();
    settings.validate().map_err(CliError::SoftPromptSettings)?;
    Ok(settings)
}

/// Every file the command writes, as (name, contents).
pub fn outputs(result: &SoftPromptResult) -> Result<Vec<(&'static str, String)>, CliError> {
    let size = (800, 480);
    Ok(vec![
        ("softprompt.csv", softprompt_csv(result)?),
        ("pairs.csv", pairs_csv(result)?),
        ("prompt_loss.csv", prompt_loss_csv(result)?),
        ("softprompt.json", crate::json_doc(&result.summary())?),
        ("softprompt.svg", svg_of(size, |a| rates_chart(a, result))),
        (
            "prompt_loss.svg",
            svg_of(size, |a| prompt_loss_chart(a, result)),
        ),
    ])
}

/// The lines printed after a run.
pub fn report(result: &SoftPromptResult, seconds: f64) -> String {
    let l = &result.lengths;
    let s = &result.settings;
    let mut lines = vec![format!(
        "soft prompts: {} training / {} test pairs ({} scaled down to their length, {} \
         duplicate texts left out); prompt L = {}, prefix k = {}, suffix s = {}{}; trained and \
         measured in {seconds:.1} s",
        result.train_pairs,
        result.test_pairs,
        result.scaled,
        result.duplicates,
        l.prompt_len,
        l.prefix,
        l.suffix,
        if l.clamped {
            format!(
                " (clamped to the context from L = {}, k = {}, s = {})",
                s.prompt_len, s.prefix, s.suffix
            )
        } else {
            String::new()
        }
    )];
    for m in &result.methods {
        let loss = m
            .losses
            .last()
            .map(|(step, loss)| format!("; final training loss {loss:.4} at step {step}"))
            .unwrap_or_default();
        lines.push(format!("  {}{loss}", method_label(m)));
    }
    lines.join("\n")
}

/// Load or train the target; `None` checkpoint trains the spec's model first.
fn target(
    spec: &ExperimentSpec,
    args: &TrainArgs,
    checkpoint: Option<PathBuf>,
) -> Result<(Corpus, Checkpoint), CliError> {
    match checkpoint {
        Some(path) => {
            let corpus = Corpus::build(&spec.data, spec.tokenizer, spec.model.context, spec.seed)?;
            let ck = crate::extract_cmd::load_checkpoint(&path, spec, &corpus)?;
            eprintln!(
                "checkpoint {} (step {}); {} training instances",
                path.display(),
                ck.step,
                corpus.train.len()
            );
            Ok((corpus, ck))
        }
        None => {
            let (trainer, checkpoints) = crate::train_spec(spec.clone(), args)?;
            let last = checkpoints
                .last()
                .cloned()
                .ok_or_else(|| CliError::Output("training saved no checkpoint".into()))?;
            Ok((trainer.corpus().clone(), last))
        }
    }
}

/// Run `mnemo softprompt`.
pub fn run(args: TrainArgs, checkpoint: Option<PathBuf>) -> Result<(), CliError> {
    let spec = crate::read_spec(&args.spec)?;
    let settings = settings(&spec)?;
    // The pairs decide whether the run can happen at all: check them on the spec's corpus
    // before training or writing anything.
    let corpus = Corpus::build(&spec.data, spec.tokenizer, spec.model.context, spec.seed)?;
    make_pairs(
        &corpus,
        &settings,
        spec.model.context,
        corpus.tokenizer.vocab_size(),
        spec.seed,
    )?;
    let device = crate::device(args.backend.into())?;
    let (corpus, ck) = target(&spec, &args, checkpoint)?;
    let mut run = SoftPromptRun::new(
        &ck,
        &corpus,
        &settings,
        spec.seed,
        PromptPositions::for_training(spec.training.packed),
        &device,
    )?;
    let total = run.progress().total;
    let bar = if args.quiet {
        ProgressBar::hidden()
    } else {
        ProgressBar::new(total as u64)
    };
    bar.set_style(
        ProgressStyle::with_template("{bar:40} {pos}/{len} prompt steps  {msg}  eta {eta}")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    let start = std::time::Instant::now();
    let result = run_blocking(&mut run, |step, progress| {
        bar.set_position(progress.done as u64);
        bar.set_message(format!("{} prompt loss {:.4}", step.method, step.loss));
        ControlFlow::Continue(())
    })?;
    bar.finish_and_clear();
    let seconds = start.elapsed().as_secs_f64();
    let files = outputs(&result)?;
    did_cmd::write_all(&args.out, &files)?;
    eprintln!("{}\nwrote {}", report(&result, seconds), args.out.display());
    Ok(())
}

/// `mnemo bench softprompt`: train the soft-prompt demo's target (not timed), then time
/// training the constant prompt and the generator with the demo's settings on the native
/// CPU backend.
pub fn bench() -> Result<(), CliError> {
    let spec = ExperimentSpec::softprompt_demo();
    let settings = settings(&spec)?;
    let device = crate::device(BackendKind::Flex)?;
    let mut trainer = mnemo_core::Trainer::new(spec.clone(), device.clone())?;
    let mut last = None;
    mnemo_core::train::run_blocking(
        &mut trainer,
        |_| ControlFlow::Continue(()),
        |ck| {
            last = Some(ck);
            Ok(())
        },
    )?;
    let ck = last.ok_or_else(|| CliError::Output("training saved no checkpoint".into()))?;
    let mut run = SoftPromptRun::new(
        &ck,
        trainer.corpus(),
        &settings,
        spec.seed,
        PromptPositions::for_training(spec.training.packed),
        &device,
    )?;
    let mut times: Vec<(Method, f64, usize)> =
        vec![(Method::Constant, 0.0, 0), (Method::Dynamic, 0.0, 0)];
    loop {
        let start = std::time::Instant::now();
        let Some(step) = mnemo_core::train::block_on(run.step())? else {
            break;
        };
        let secs = start.elapsed().as_secs_f64();
        if let Some(t) = times.iter_mut().find(|t| t.0 == step.method) {
            t.1 += secs;
            t.2 += 1;
        }
    }
    let start = std::time::Instant::now();
    let result = mnemo_core::train::block_on(run.result())?;
    let eval = start.elapsed().as_secs_f64();
    println!(
        "soft-prompt demo on {}: target {} layers, d_model {}, context {}; {} training pairs, \
         batch {}, L = {}, k = {}, s = {}",
        BackendKind::Flex.label(),
        spec.model.n_layers,
        spec.model.d_model,
        spec.model.context,
        result.train_pairs,
        settings.batch_size,
        result.lengths.prompt_len,
        result.lengths.prefix,
        result.lengths.suffix
    );
    for (method, secs, steps) in times {
        let what = match method {
            Method::Dynamic => "generator (dynamic prompt)",
            _ => "constant prompt",
        };
        println!(
            "  {what:<27} {:8.1} ms/step  {secs:7.2} s for {steps} steps",
            secs * 1000.0 / steps.max(1) as f64
        );
    }
    println!(
        "  evaluation (3 methods, {} test pairs): {eval:.2} s",
        result.test_pairs
    );
    Ok(())
}
