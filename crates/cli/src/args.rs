//! The command line: the subcommands and their arguments.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};
use mnemo_core::BackendKind;

use crate::{
    bench_cmd, exposure_cmd, geometry_cmd, hf_cmd, merge_cmd, mitigate_cmd, shard, sizes_cmd,
    spec_cmd,
};

#[derive(Parser)]
#[command(name = "mnemo", version, about = "Measure how small language models memorise their training data.", long_about = None)]
pub(crate) struct Cli {
    #[command(subcommand)]
    pub(crate) command: Command,
}

#[derive(Subcommand)]
pub(crate) enum Command {
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
        /// Members trained at once, one per thread (the result does not depend on it;
        /// default: all cores but one when there are more than two).
        #[arg(long, value_name = "N")]
        threads: Option<usize>,
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
        /// Case-deletion retrains run at once, one per thread (the tables do not depend
        /// on it; default: all cores but one when there are more than two).
        #[arg(long, value_name = "N")]
        threads: Option<usize>,
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
pub(crate) struct TrainArgs {
    /// The experiment spec (see `mnemo spec --example`).
    #[arg(long, value_name = "SPEC.json")]
    pub(crate) spec: PathBuf,
    /// Output directory (created if missing).
    #[arg(long, value_name = "DIR")]
    pub(crate) out: PathBuf,
    /// Backend to train and evaluate on.
    #[arg(long, value_enum, default_value_t = Backend::Cpu)]
    pub(crate) backend: Backend,
    /// No progress bar.
    #[arg(long)]
    pub(crate) quiet: bool,
}

#[derive(Args)]
pub(crate) struct ProfileArgs {
    /// The experiment spec (see `mnemo spec --profile`).
    #[arg(
        long,
        value_name = "SPEC.json",
        required_unless_present = "checkpoints",
        conflicts_with = "checkpoints"
    )]
    pub(crate) spec: Option<PathBuf>,
    /// Output directory (created if missing).
    #[arg(long, value_name = "DIR")]
    pub(crate) out: PathBuf,
    /// Backend to train and evaluate on.
    #[arg(long, value_enum, default_value_t = Backend::Cpu)]
    pub(crate) backend: Backend,
    /// No progress bar.
    #[arg(long)]
    pub(crate) quiet: bool,
    #[command(flatten)]
    pub(crate) series: hf_cmd::SeriesArgs,
}

#[derive(Args)]
pub(crate) struct ExtractArgs {
    #[command(flatten)]
    pub(crate) run: TrainArgs,
    /// Measure this checkpoint (from `mnemo train` on the same spec) instead of training.
    #[arg(long, value_name = "CKPT.safetensors")]
    pub(crate) checkpoint: Option<PathBuf>,
    /// Measure a Hugging Face model (GPT-2 or GPT-NeoX folder) on the spec's texts and
    /// split, tokenised by its own tokenizer, instead of training.
    #[arg(long, value_name = "DIR", conflicts_with = "checkpoint")]
    pub(crate) hf: Option<PathBuf>,
    /// Prefix length k in tokens (1-256; default: the spec's extraction.prefix, else 50).
    /// Shorter sequences are split in proportion.
    #[arg(long, value_name = "K")]
    pub(crate) prefix: Option<usize>,
    /// Suffix length s in tokens (1-256; default: the spec's extraction.suffix, else 50).
    #[arg(long, value_name = "S")]
    pub(crate) suffix: Option<usize>,
}

#[derive(Args)]
pub(crate) struct SoftPromptArgs {
    #[command(flatten)]
    pub(crate) run: TrainArgs,
    /// Use this checkpoint (from `mnemo train` on the same spec) instead of training.
    #[arg(long, value_name = "CKPT.safetensors")]
    pub(crate) checkpoint: Option<PathBuf>,
}

#[derive(Clone, Copy, ValueEnum)]
pub(crate) enum Backend {
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
pub(crate) struct BackendArg {
    /// Backend to train and evaluate on.
    #[arg(long, value_enum, default_value_t = Backend::Cpu)]
    pub(crate) backend: Backend,
}
