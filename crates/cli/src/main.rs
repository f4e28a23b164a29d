//! `mnemo`: the native shell over Mnemo's engine. Train models, write their checkpoints,
//! data order, losses and charts; estimate memorisation profiles; measure extraction;
//! measure extraction with soft prompts; print example specs; benchmark the backends.

use std::fs;
use std::ops::ControlFlow;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand, ValueEnum};
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

#[derive(Parser)]
#[command(name = "mnemo", version, about = "Measure how small language models memorise their training data.", long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Train the model a spec describes and write checkpoints, resume.bin (the final
    /// weights with the optimiser's state), order.csv, loss.csv,
    /// loss.svg, instances.csv and spec.json into the output directory.
    Train(TrainArgs),
    /// Print an experiment spec as JSON.
    Spec(spec_cmd::SpecArgs),
    /// Estimate a memorisation profile from your own panel (e.g. measured on Pythia
    /// checkpoints): PANEL.csv has the header `instance,cohort,checkpoint,outcome`, an
    /// empty cohort marks a never-trained instance. Writes att_gt.csv, event.csv,
    /// instantaneous.csv, residual.csv, simple.csv, result.json and an SVG per chart.
    Did {
        /// The panel.
        #[arg(long, value_name = "PANEL.csv")]
        panel: PathBuf,
        /// Output directory.
        #[arg(long, value_name = "DIR")]
        out: PathBuf,
        /// Multiplier-bootstrap draws for the simultaneous bands (0: pointwise analytic).
        #[arg(long, default_value_t = 1000)]
        draws: usize,
        /// Seed of the bootstrap.
        #[arg(long, default_value_t = 0)]
        seed: u64,
        /// Significance level.
        #[arg(long, default_value_t = 0.05)]
        alpha: f64,
    },
    /// Train a spec, build its panel (sampled instances at every checkpoint), estimate
    /// the memorisation profile and write the `did` files plus panel.csv and the
    /// training outputs. The spec's `profile` section sets the panel (defaults if absent).
    /// With --checkpoints instead of --spec: the profile of a series of Hugging Face
    /// checkpoints (GPT-2 or GPT-NeoX) with your data order (--order) and instances
    /// (--data), every instance at every checkpoint, one checkpoint loaded at a time.
    Profile(ProfileArgs),
    /// Per-token log-probabilities of texts under a Hugging Face model (--hf) or a Mnemo
    /// checkpoint (--checkpoint with --spec), tokenised by the model's own tokenizer:
    /// writes logprobs.csv (`text,position,token,logprob`; position = the token's index
    /// in the text's ids, from 1) and surprisal.csv (`text,tokens,mean_surprisal`, nats).
    Eval(hf_cmd::EvalArgs),
    /// Write a Mnemo checkpoint as a Hugging Face GPT-2 folder (config.json,
    /// model.safetensors, tokenizer.json) that transformers loads.
    ExportHf(hf_cmd::ExportArgs),
    /// Counterfactual memorisation: train an ensemble of models, each on a random subset
    /// of the training texts, and write counterfactual.csv
    /// (`instance,mem,in_mean,out_mean,n_in,n_out,se,text`), influence.csv,
    /// counterfactual.json and SVG charts. The spec's `counterfactual` section sets the
    /// ensemble (defaults if absent).
    Counterfactual {
        /// The experiment spec (see `mnemo spec --counterfactual`).
        #[arg(long, value_name = "SPEC.json")]
        spec: PathBuf,
        /// Output directory.
        #[arg(long, value_name = "DIR")]
        out: PathBuf,
        /// Models in the ensemble (overrides the spec; 2 to 64).
        #[arg(long)]
        models: Option<usize>,
        #[command(flatten)]
        backend: BackendArg,
        /// No progress bar.
        #[arg(long)]
        quiet: bool,
        /// Train only shard I of N (members I-1, I-1+N, ...) and write a shard folder
        /// for `mnemo merge`.
        #[arg(long, value_name = "I/N")]
        shard: Option<shard::Shard>,
    },
    /// Combine the shard folders of a `--shard I/N` run (counterfactual, mitigate,
    /// influence or sizes) into exactly the files the unsharded run writes (measured
    /// seconds aside). Refuses a missing or repeated shard, and shards of another command,
    /// spec, model or options.
    Merge(merge_cmd::MergeArgs),
    /// The memorisation profile (`mnemo profile`) at several model widths: writes
    /// persistent.csv (`d_model,event_time,memorisation,lower,upper`), persistent.svg
    /// (the curves overlaid) and each width's profile files in d_model_W/.
    Sizes(sizes_cmd::SizesArgs),
    /// Write a Slurm job array that runs a command in shards and merges them:
    /// DIR/array.sbatch, DIR/merge.sbatch and DIR/submit.sh (prints how to submit).
    Slurm(merge_cmd::SlurmArgs),
    /// Measure extraction (greedy decoding from a k-token prefix reproduces the next s
    /// tokens) on every training instance and every held-out one (the baseline). Without
    /// --checkpoint the spec's model is trained first (writing the `train` outputs);
    /// with one, the checkpoint must fit the spec's model and corpus. Writes
    /// extraction.csv (training instances), extraction_heldout.csv (both
    /// `instance,prefix_len,suffix_len,exact,fraction`), extraction.json (rates and the
    /// lengths used) and extraction.svg.
    Extract(ExtractArgs),
    /// Canary exposure (the Secret Sharer): train the spec with its `data.canaries`
    /// inserted (or read --checkpoint), rank each secret among every candidate of its
    /// format (exact up to `exposure.exact_limit` candidates, else extrapolated from a
    /// skew-normal fit), and write exposure.csv
    /// (`canary,repetitions,rank,candidates,exposure,method`), exposure.json,
    /// exposure.svg and perplexity.svg. See `mnemo spec --canary`.
    Exposure(exposure_cmd::ExposureArgs),
    /// Make a link that reproduces a spec in the browser (prints the fragment after `#`,
    /// or the whole URL with --base), or decode a link back into its spec (--decode).
    Link {
        /// The spec to encode.
        #[arg(long, value_name = "SPEC.json", conflicts_with = "decode")]
        spec: Option<PathBuf>,
        /// A link (whole URL, `#fragment` or bare fragment) to print as a spec.
        #[arg(long, value_name = "URL_OR_FRAGMENT")]
        decode: Option<String>,
        /// The view the link opens: train, profile, counterfactual or extraction.
        #[arg(long)]
        view: Option<String>,
        /// Run the experiment as soon as the link opens.
        #[arg(long)]
        autorun: bool,
        /// Open the view alone, for an iframe.
        #[arg(long)]
        embed: bool,
        /// The page's address, to print a whole URL.
        #[arg(long, value_name = "URL")]
        base: Option<String>,
    },
    /// Run what a link describes: train (or build the profile), then the counterfactual
    /// ensemble and extraction when the spec has them.
    Run {
        /// The link.
        #[arg(long, value_name = "URL_OR_FRAGMENT")]
        link: String,
        /// The file a link names by its hash (when its text was too large for the link).
        #[arg(long, value_name = "FILE")]
        corpus: Option<PathBuf>,
        /// Output directory.
        #[arg(long, value_name = "DIR")]
        out: PathBuf,
        #[command(flatten)]
        backend: BackendArg,
        /// No progress bar.
        #[arg(long)]
        quiet: bool,
    },
    /// Extraction with soft prompts: cut a (prefix, suffix) pair from every distinct
    /// training text, train a constant soft prompt (Ozdayi et al.) and a dynamic one from a
    /// generator (Wang et al.) on part of the pairs against the frozen model, and measure
    /// greedy extraction without a prompt and with each on the held-out pairs. The spec's
    /// `softprompt` section sets it (defaults if absent; see `mnemo spec --softprompt`).
    /// Without --checkpoint the spec's model is trained first (writing the `train`
    /// outputs). Writes softprompt.csv (`method,exact_rate,fractional_rate,relative_gain`),
    /// pairs.csv (`pair,method,exact,fraction`), prompt_loss.csv (`method,step,loss`),
    /// softprompt.json, softprompt.svg and prompt_loss.svg.
    Softprompt(SoftPromptArgs),
    /// Local intrinsic dimension of a point file (one point a line, coordinates separated
    /// by commas, no header) by lPCA or MLE, as scikit-dimension 0.3.4 computes them;
    /// writes lid.csv (`point,lid`, empty where undefined) and prints a summary.
    Lid {
        /// The points.
        #[arg(long, value_name = "FILE.csv")]
        points: PathBuf,
        /// The estimator.
        #[arg(long, value_enum)]
        estimator: geometry_cmd::LidArg,
        /// Neighbours (default 100 for lPCA, skdim's; 20 for MLE).
        #[arg(long)]
        k: Option<usize>,
        /// Output directory.
        #[arg(long, value_name = "DIR")]
        out: PathBuf,
    },
    /// The geometry of memorisation (METHODS.md section 6): train the spec's `geometry`
    /// noise predictor on its manifold, sample, and measure lPCA, MLE, FLIPD and the
    /// normal bundle; writes training.csv, samples.csv, flipd_curve.csv, geometry.json
    /// and SVG charts.
    Geometry {
        /// The experiment spec (with a `geometry` section; `mnemo spec --geometry`).
        #[arg(long, value_name = "SPEC.json")]
        spec: PathBuf,
        /// Output directory.
        #[arg(long, value_name = "DIR")]
        out: PathBuf,
        #[command(flatten)]
        backend: BackendArg,
        /// No progress bar.
        #[arg(long)]
        quiet: bool,
    },
    /// Training-data influence (TracIn, TracIn-Last, TracIn-WE, TracIn-WE-TopK) and the
    /// case-deletion test: train the spec, score every training text for each test text
    /// and retrain without each one's top proponents. The spec's `influence` section sets
    /// it (see `mnemo spec --influence`); bad settings stop with exit code 2 before
    /// anything is trained. Writes instances.csv (`instance,split,tokens,text`),
    /// checkpoints.csv (`step,learning_rate,file`) and checkpoints/*.safetensors,
    /// influence.csv (`test,train,method,score`), tokens.csv (`test,train,token,score`),
    /// deletion.csv (`method,k,draw,test,loss_before,loss_after`), influence.json,
    /// agreement.svg and deletion.svg.
    Influence {
        /// The experiment spec.
        #[arg(long, value_name = "SPEC.json")]
        spec: PathBuf,
        /// Output directory.
        #[arg(long, value_name = "DIR")]
        out: PathBuf,
        #[command(flatten)]
        backend: BackendArg,
        /// No progress bars.
        #[arg(long)]
        quiet: bool,
        /// Run only shard I of N of the case-deletion retrains (distinct removed sets
        /// I-1, I-1+N, ...; training and gradient pass whole) and write a shard folder
        /// for `mnemo merge`.
        #[arg(long, value_name = "I/N")]
        shard: Option<shard::Shard>,
        /// Score with Hugging Face checkpoints (GPT-2 or GPT-NeoX folders, commas between)
        /// instead of training: the spec's texts and split in the model's own tokens, each
        /// checkpoint weighted 1, no case deletion.
        #[arg(
            long,
            value_name = "DIR1,DIR2,...",
            value_delimiter = ',',
            conflicts_with = "shard"
        )]
        hf: Vec<PathBuf>,
    },
    /// TinyMem's post-hoc unlearning methods (METHODS.md section 5, methods 7-17) on a
    /// trained TinyMem model, each on a copy, measured before and after: writes
    /// mitigation.csv (`method,kind,setting,memorised_before,memorised_after,
    /// clean_after,accuracy_before,accuracy_after,perplexity_after,seconds`; shares as
    /// fractions), sequences.csv (`sequence,method,memorised_before,memorised_after`),
    /// mitigation.json, tradeoff.svg and a bar chart per measure. Unknown methods,
    /// impossible ratios or a checkpoint that does not fit stop with exit code 2 before
    /// any work.
    Mitigate(mitigate_cmd::MitigateArgs),
    /// Compress a checkpoint for shipping as a built-in model (zlib safetensors, read by
    /// `--builtin`).
    Pack {
        /// The checkpoint.
        #[arg(long, value_name = "CKPT.safetensors")]
        checkpoint: PathBuf,
        /// The compressed file to write.
        #[arg(long, value_name = "FILE.safetensors.z")]
        out: PathBuf,
    },
    /// Benchmarks that print figures.
    #[command(subcommand)]
    Bench(bench_cmd::Bench),
}

#[derive(Args)]
struct TrainArgs {
    /// The experiment spec (see `mnemo spec --example`).
    #[arg(long, value_name = "SPEC.json")]
    spec: PathBuf,
    /// Output directory (created if missing).
    #[arg(long, value_name = "DIR")]
    out: PathBuf,
    /// Backend to train and evaluate on.
    #[arg(long, value_enum, default_value_t = Backend::Cpu)]
    backend: Backend,
    /// No progress bar.
    #[arg(long)]
    quiet: bool,
}

#[derive(Args)]
struct ProfileArgs {
    /// The experiment spec (see `mnemo spec --profile`).
    #[arg(
        long,
        value_name = "SPEC.json",
        required_unless_present = "checkpoints",
        conflicts_with = "checkpoints"
    )]
    spec: Option<PathBuf>,
    /// Output directory (created if missing).
    #[arg(long, value_name = "DIR")]
    out: PathBuf,
    /// Backend to train and evaluate on.
    #[arg(long, value_enum, default_value_t = Backend::Cpu)]
    backend: Backend,
    /// No progress bar.
    #[arg(long)]
    quiet: bool,
    #[command(flatten)]
    series: hf_cmd::SeriesArgs,
}

#[derive(Args)]
struct ExtractArgs {
    #[command(flatten)]
    run: TrainArgs,
    /// Measure this checkpoint (from `mnemo train` on the same spec) instead of training.
    #[arg(long, value_name = "CKPT.safetensors")]
    checkpoint: Option<PathBuf>,
    /// Measure a Hugging Face model (GPT-2 or GPT-NeoX folder) on the spec's texts and
    /// split, tokenised by its own tokenizer, instead of training.
    #[arg(long, value_name = "DIR", conflicts_with = "checkpoint")]
    hf: Option<PathBuf>,
    /// Prefix length k in tokens (1-256; default: the spec's extraction.prefix, else 50).
    /// Shorter sequences are split in proportion.
    #[arg(long, value_name = "K")]
    prefix: Option<usize>,
    /// Suffix length s in tokens (1-256; default: the spec's extraction.suffix, else 50).
    #[arg(long, value_name = "S")]
    suffix: Option<usize>,
}

#[derive(Args)]
struct SoftPromptArgs {
    #[command(flatten)]
    run: TrainArgs,
    /// Use this checkpoint (from `mnemo train` on the same spec) instead of training.
    #[arg(long, value_name = "CKPT.safetensors")]
    checkpoint: Option<PathBuf>,
}

#[derive(Clone, Copy, ValueEnum)]
enum Backend {
    /// The CPU: burn's pure-Rust backend (flex).
    Cpu,
    /// Same as cpu.
    Flex,
    /// burn's ndarray CPU backend (only in builds with the `ndarray` feature).
    Ndarray,
    /// burn's wgpu backend: Vulkan on Linux, Metal on macOS (the `wgpu` feature, default).
    Wgpu,
    /// burn's CUDA backend (only in builds with the `cuda` feature).
    Cuda,
}

impl From<Backend> for BackendKind {
    fn from(b: Backend) -> Self {
        match b {
            Backend::Cpu | Backend::Flex => BackendKind::Flex,
            Backend::Ndarray => BackendKind::Ndarray,
            Backend::Wgpu => BackendKind::Wgpu,
            Backend::Cuda => BackendKind::Cuda,
        }
    }
}

/// `--backend` for the commands whose options are not [`TrainArgs`].
#[derive(Args, Clone, Copy)]
struct BackendArg {
    /// Backend to train and evaluate on.
    #[arg(long, value_enum, default_value_t = Backend::Cpu)]
    backend: Backend,
}

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
            ..
        } => influence_cmd::run(spec, out, backend.backend.into(), quiet, shard),
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
        Command::Bench(bench_cmd::Bench::Counterfactual { models }) => cf_cmd::bench(models),
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
        } => cf_cmd::counterfactual(spec, out, models, backend.backend.into(), quiet, shard),
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
