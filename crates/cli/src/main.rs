//! `mnemo`: the native shell over Mnemo's engine. Train models, write their checkpoints,
//! data order, losses and charts; estimate memorisation profiles; measure extraction;
//! measure extraction with soft prompts; print example specs; benchmark the backends.

use std::fs;
use std::ops::ControlFlow;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use args::*;
use clap::Parser;
use indicatif::{ProgressBar, ProgressStyle};
use mnemo_core::train::{Trainer, run_blocking};
use mnemo_core::{
    BackendKind, CheckpointError, CorpusError, ExperimentSpec, SpecError, TrainError,
};
use mnemo_plots::{LossSeries, loss_svg};
use thiserror::Error;

/// mimalloc instead of the system allocator: burn allocates fresh buffers for most
/// tensors of every step, and glibc hands allocations of a few hundred KiB back to the
/// kernel on free (mmap), so each step page-faulted its activations in again (360,000
/// page faults in `mnemo bench train --steps 5 --model tinymem`, 25,000 with mimalloc;
/// README, Benchmarks).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

mod args;
mod bench_cmd;
mod cf_cmd;
mod did_cmd;
mod exposure_cmd;
mod extract_cmd;
mod geometry_cmd;
mod hf_cmd;
mod influence_cmd;
mod link_cmd;
mod merge_cmd;
mod mitigate_cmd;
mod shard;
mod sizes_cmd;
mod softprompt_cmd;
mod spec_cmd;
mod threads;

#[derive(Debug, Error)]
enum CliError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: {source}")]
    Spec { path: PathBuf, source: SpecError },
    #[error(transparent)]
    Train(#[from] TrainError),
    #[error("writing CSV: {0}")]
    Csv(#[from] csv::Error),
    #[error("{0}")]
    Device(#[from] mnemo_core::native::DeviceError),
    #[error(
        "nothing to do: pass --example, --tinymem, --profile, --counterfactual, --softprompt, --influence, --canary, --geometry or --check FILE"
    )]
    NothingToDo,
    #[error("{path}: {message}")]
    Panel { path: PathBuf, message: String },
    #[error("{0}")]
    Output(String),
    #[error("profile: {0}")]
    Profile(#[from] mnemo_measures::profile::ProfileError),
    #[error("estimator: {0}")]
    Did(#[from] mnemo_measures::did::DidError),
    #[error("link: {0}")]
    Link(#[from] mnemo_core::link::LinkError),
    #[error("counterfactual: {0}")]
    Counterfactual(#[from] mnemo_measures::counterfactual::CounterfactualError),
    #[error("data: {0}")]
    Corpus(#[from] CorpusError),
    #[error("--prefix/--suffix: {0}")]
    Settings(SpecError),
    #[error("{path}: {source}")]
    Checkpoint {
        path: PathBuf,
        source: CheckpointError,
    },
    #[error("{path} does not fit the spec: {message}")]
    Mismatch { path: PathBuf, message: String },
    #[error("exposure: {0}")]
    Exposure(#[from] mnemo_measures::exposure::ExposureError),
    #[error("extraction: {0}")]
    Extraction(#[from] mnemo_measures::extraction::ExtractionError),
    #[error("{0}")]
    SoftPromptSettings(SpecError),
    #[error("soft prompts: {0}")]
    SoftPrompt(#[from] mnemo_measures::softprompt::SoftPromptError),
    #[error("influence: {0}")]
    Influence(#[from] mnemo_measures::influence::InfluenceError),
    #[error("geometry: {0}")]
    Geometry(#[from] mnemo_measures::geometry::GeometryError),
    #[error("merge: {0}")]
    Merge(#[from] shard::MergeError),
    #[error("{path}, line {line}: {message}")]
    Points {
        path: PathBuf,
        line: usize,
        message: String,
    },
}

/// Print `text` and a newline on stdout. A reader that closed the pipe early (`mnemo
/// spec ... | head`) ends the output quietly instead of panicking as `println!` does.
fn emit(text: &str) -> Result<(), CliError> {
    use std::io::Write;
    match writeln!(std::io::stdout().lock(), "{text}") {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => Err(CliError::Io {
            path: PathBuf::from("stdout"),
            source: e,
        }),
        _ => Ok(()),
    }
}

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> CliError + '_ {
    move |source| CliError::Io {
        path: path.to_path_buf(),
        source,
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Train(args) => train(args).map(|_| ()),
        Command::Profile(ProfileArgs {
            spec: Some(spec),
            out,
            backend,
            quiet,
            ..
        }) => did_cmd::profile(TrainArgs {
            spec,
            out,
            backend,
            quiet,
        }),
        Command::Profile(ProfileArgs {
            spec: None,
            out,
            backend,
            series,
            ..
        }) => hf_cmd::profile_series(series, out, backend),
        Command::Eval(args) => hf_cmd::eval(args),
        Command::ExportHf(args) => hf_cmd::export(args),
        Command::Extract(ExtractArgs {
            run,
            checkpoint,
            hf,
            prefix,
            suffix,
        }) => extract_cmd::run(run, checkpoint, hf, prefix, suffix),
        Command::Softprompt(SoftPromptArgs { run, checkpoint }) => {
            softprompt_cmd::run(run, checkpoint)
        }
        Command::Did {
            panel,
            out,
            draws,
            seed,
            alpha,
        } => did_cmd::run(panel, out, draws, seed, alpha),
        Command::Spec(args) => spec_cmd::run(args),
        Command::Exposure(args) => exposure_cmd::run(args),
        Command::Influence {
            spec,
            out,
            backend,
            quiet,
            hf,
            ..
        } if !hf.is_empty() => influence_cmd::run_hf(spec, hf, out, backend.backend.into(), quiet),
        Command::Influence {
            spec,
            out,
            backend,
            quiet,
            shard,
            threads,
            ..
        } => influence_cmd::run(spec, out, backend.backend.into(), quiet, shard, threads),
        Command::Lid {
            points,
            estimator,
            k,
            out,
        } => geometry_cmd::lid(points, estimator, k, out),
        Command::Geometry {
            spec,
            out,
            backend,
            quiet,
        } => geometry_cmd::run(spec, out, backend.backend.into(), quiet),
        Command::Bench(bench_cmd::Bench::Train {
            steps,
            backend,
            model,
            size,
            json,
        }) => bench_cmd::bench_train(steps, backend, model, size, json),
        Command::Bench(bench_cmd::Bench::ExportInit {
            out,
            steps,
            check_steps,
        }) => bench_cmd::export_init(&out, steps, check_steps),
        Command::Link {
            spec,
            decode,
            view,
            autorun,
            embed,
            base,
        } => link_cmd::link(spec, decode, view, autorun, embed, base),
        Command::Run {
            link,
            corpus,
            out,
            backend,
            quiet,
        } => link_cmd::run(link, corpus, out, backend.backend, quiet),
        Command::Bench(bench_cmd::Bench::Counterfactual {
            models,
            threads,
            json,
        }) => cf_cmd::bench(models, threads, json),
        Command::Bench(bench_cmd::Bench::Softprompt) => softprompt_cmd::bench(),
        Command::Mitigate(args) => mitigate_cmd::run(args),
        Command::Pack { checkpoint, out } => mitigate_cmd::pack(&checkpoint, &out),
        Command::Counterfactual {
            spec,
            out,
            models,
            backend,
            quiet,
            shard,
            threads,
        } => cf_cmd::counterfactual(
            spec,
            out,
            models,
            backend.backend.into(),
            quiet,
            shard,
            threads,
        ),
        Command::Merge(args) => merge_cmd::merge(args),
        Command::Sizes(args) => sizes_cmd::run(args),
        Command::Slurm(args) => merge_cmd::slurm(args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(2)
        }
    }
}

fn read_spec(path: &Path) -> Result<ExperimentSpec, CliError> {
    let text = fs::read_to_string(path).map_err(io_err(path))?;
    ExperimentSpec::from_json(&text).map_err(|source| CliError::Spec {
        path: path.to_path_buf(),
        source,
    })
}

/// The native device of `kind` (made once per process; see [`mnemo_core::native`]). The
/// device used last names itself in every JSON output ([`json_doc`]).
fn device(kind: BackendKind) -> Result<mnemo_core::backend::Device, CliError> {
    let made = mnemo_core::native::device(kind)?;
    let mut name = DEVICE_NAME.lock().unwrap_or_else(|e| e.into_inner());
    if name.as_deref() != Some(made.name.as_str()) {
        eprintln!("device: {}", made.name);
        *name = Some(made.name);
    }
    Ok(made.device)
}

static DEVICE_NAME: std::sync::Mutex<Option<String>> = std::sync::Mutex::new(None);

/// The description of the device this command runs on, e.g. `cpu (flex)` or
/// `wgpu: llvmpipe (LLVM 15.0.6, 256 bits) (Vulkan)`; `None` before [`device`] made one.
fn device_name() -> Option<String> {
    DEVICE_NAME
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .clone()
}

/// Name the device of this command's outputs without making one (`mnemo merge`: the
/// shards' devices).
fn set_device_name(name: String) {
    *DEVICE_NAME.lock().unwrap_or_else(|e| e.into_inner()) = Some(name);
}

/// `value` as pretty JSON with a `"device"` field naming the device the command ran on
/// (when it made one; objects only).
fn json_doc(value: &impl serde::Serialize) -> Result<String, CliError> {
    let mut v = serde_json::to_value(value).map_err(|e| CliError::Output(e.to_string()))?;
    if let (Some(map), Some(name)) = (v.as_object_mut(), device_name()) {
        map.insert("device".into(), serde_json::Value::String(name));
    }
    serde_json::to_string_pretty(&v).map_err(|e| CliError::Output(e.to_string()))
}

fn train(args: TrainArgs) -> Result<(Trainer, Vec<mnemo_core::Checkpoint>), CliError> {
    let spec = read_spec(&args.spec)?;
    train_spec(spec, &args)
}

/// Train `spec` as `mnemo train` does, writing its outputs into `args.out`.
fn train_spec(
    spec: ExperimentSpec,
    args: &TrainArgs,
) -> Result<(Trainer, Vec<mnemo_core::Checkpoint>), CliError> {
    let mut kept = Vec::new();
    let kind: BackendKind = args.backend.into();
    let mut trainer = Trainer::new(spec.clone(), device(kind)?)?;
    let out = &args.out;
    let ck_dir = out.join("checkpoints");
    fs::create_dir_all(&ck_dir).map_err(io_err(&ck_dir))?;
    let spec_path = out.join("spec.json");
    fs::write(&spec_path, spec.to_json()).map_err(io_err(&spec_path))?;
    write_instances(&out.join("instances.csv"), trainer.corpus())?;

    let corpus = trainer.corpus();
    eprintln!(
        "{} training / {} held-out instances, vocabulary {}, {} steps on {}{}",
        corpus.train.len(),
        corpus.heldout.len(),
        corpus.tokenizer.vocab_size(),
        trainer.total_steps(),
        device_name().unwrap_or_default(),
        if corpus.truncated > 0 {
            format!(" ({} instances truncated to the context)", corpus.truncated)
        } else {
            String::new()
        }
    );
    let bar = if args.quiet {
        ProgressBar::hidden()
    } else {
        ProgressBar::new(trainer.total_steps() as u64)
    };
    bar.set_style(
        ProgressStyle::with_template("{bar:40} {pos}/{len} steps  {msg}  eta {eta}")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    let outcome = run_blocking(
        &mut trainer,
        |p| {
            bar.set_position(p.step as u64);
            bar.set_message(format!("loss {:.4}  {:.0} tok/s", p.loss, p.tokens_per_s));
            ControlFlow::Continue(())
        },
        |ck| {
            let path = ck_dir.join(format!("step_{:06}.safetensors", ck.step));
            let bytes = ck.to_safetensors()?;
            fs::write(&path, bytes)
                .map_err(|e| TrainError::Device(format!("{}: {e}", path.display())))?;
            kept.push(ck);
            Ok(())
        },
    )?;
    bar.finish_and_clear();

    let mut w = csv::Writer::from_path(out.join("order.csv"))?;
    w.write_record(["step", "instance_id"])?;
    for (step, id) in trainer.order() {
        w.write_record([step.to_string(), id.to_string()])?;
    }
    w.flush().map_err(io_err(out))?;
    let mut w = csv::Writer::from_path(out.join("loss.csv"))?;
    w.write_record(["step", "loss"])?;
    for (step, loss) in trainer.losses() {
        w.write_record([step.to_string(), loss.to_string()])?;
    }
    w.flush().map_err(io_err(out))?;
    let svg_path = out.join("loss.svg");
    let series = LossSeries {
        label: String::new(),
        points: trainer.losses().to_vec(),
    };
    fs::write(&svg_path, loss_svg(&[series], (800, 480))).map_err(io_err(&svg_path))?;
    // The final resume point: the weights with AdamW's state, so a fine-tune (mnemo
    // mitigate --resume) continues the optimiser as training would have.
    let resume_path = out.join("resume.bin");
    let point = mnemo_core::train::block_on(trainer.resume_point())
        .map_err(|e| CliError::Output(format!("resume point: {e}")))?;
    let bytes = point
        .to_bytes()
        .map_err(|e| CliError::Output(format!("resume point: {e}")))?;
    fs::write(&resume_path, bytes).map_err(io_err(&resume_path))?;
    let last = trainer.losses().last().map(|l| l.1).unwrap_or(f32::NAN);
    let (train_loss, held_loss) = mnemo_core::train::block_on(trainer.train_heldout_loss())?;
    let fmt = |l: Option<f32>| l.map_or("-".to_string(), |l| format!("{l:.4}"));
    eprintln!(
        "done in {:.1} s: last step loss {last:.4}; mean loss on training instances {}, on held-out instances {}; wrote {}",
        outcome.elapsed_s,
        fmt(train_loss),
        fmt(held_loss),
        out.display()
    );
    Ok((trainer, kept))
}

fn write_instances(path: &Path, corpus: &mnemo_core::Corpus) -> Result<(), CliError> {
    let held: std::collections::HashSet<u32> = corpus.heldout.iter().copied().collect();
    let mut w = csv::Writer::from_path(path)?;
    w.write_record(["instance_id", "split", "tokens", "text"])?;
    for inst in &corpus.instances {
        let split = if held.contains(&inst.id) {
            "heldout"
        } else {
            "train"
        };
        w.write_record([
            inst.id.to_string(),
            split.to_string(),
            inst.tokens.len().to_string(),
            inst.text.clone(),
        ])?;
    }
    w.flush().map_err(io_err(path))?;
    Ok(())
}
