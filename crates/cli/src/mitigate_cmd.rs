//! `mnemo mitigate`: TinyMem's post-hoc unlearning methods (METHODS.md section 5) on a
//! trained model, each on a copy, measured before and after. Every input is checked
//! before any work (exit code 2): the spec, the methods, the ratios, and that the
//! checkpoint fits the spec's model and corpus.

use std::fs;
use std::ops::ControlFlow;
use std::path::{Path, PathBuf};

use mnemo_core::{Checkpoint, Corpus, train::block_on};
use mnemo_measures::unlearn::{
    Method, MethodSettings, MitigationOptions, MitigationSummary, prepare, run_method,
};
use mnemo_plots::did::svg_of;
use mnemo_plots::mitigation::{Measure, measure_chart, reference_points, tradeoff_chart};

use crate::shard::{self, Shard, ShardSet};
use crate::{CliError, did_cmd, io_err};

/// The shards' name for this command.
pub const COMMAND: &str = "mitigate";

/// SHA-256 (hex) of a file's bytes, for the shard digest.
fn sha256(bytes: &[u8]) -> String {
    use sha2::{Digest, Sha256};
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Arguments of `mnemo mitigate`.
#[derive(clap::Args)]
pub struct MitigateArgs {
    /// The spec the model was trained from (optional with --builtin).
    #[arg(long, value_name = "SPEC.json")]
    pub spec: Option<PathBuf>,
    /// The trained model.
    #[arg(long, value_name = "CKPT.safetensors", conflicts_with = "builtin")]
    pub checkpoint: Option<PathBuf>,
    /// The training run's resume point for the model (`resume.bin` of `mnemo train`):
    /// the fine-tunes continue its optimiser state. Without --checkpoint, its weights
    /// are the model.
    #[arg(long, value_name = "resume.bin", conflicts_with = "builtin")]
    pub resume: Option<PathBuf>,
    /// A Hugging Face GPT-2 or GPT-NeoX folder trained on the spec's data (TinyMem's own
    /// models are GPT2LMHeadModels with its 14-token vocabulary): the model to mitigate,
    /// read with the spec's tokenizer (its vocabulary must be the model's). Needs --spec;
    /// the methods that train a new model from the spec are refused with it.
    #[arg(long, value_name = "DIR", conflicts_with_all = ["builtin", "checkpoint", "resume"])]
    pub hf: Option<PathBuf>,
    /// A built-in model: tinymem-noise-2l, tinymem-noise-4l or tinymem-backdoor-2l.
    #[arg(long, value_name = "NAME")]
    pub builtin: Option<String>,
    /// `all` or a comma-separated list: loss-truncation, spectral-norm,
    /// example-tied-dropout (each trains a new model: as long as the original run),
    /// finetune-clean, finetune-extra, finetune-both, zero-out, activations,
    /// integrated-gradients, slimming, hard-concrete, greedy, durable, durable-aggregate,
    /// second-order, subnet, balanced-subnet. Default: the spec's `mitigation` section,
    /// or all.
    #[arg(long)]
    pub methods: Option<String>,
    /// Ratios to sweep (each method runs at each; default: each method's own).
    #[arg(long, value_name = "R1,R2,...")]
    pub ratios: Option<String>,
    /// Clean training examples in the retain set (default: the spec's, or 64).
    #[arg(long)]
    pub retain: Option<usize>,
    /// Epochs or steps of the optimising methods (overrides each method's default).
    #[arg(long)]
    pub epochs: Option<usize>,
    /// Learning rate of the optimising methods (overrides the default 0.1).
    #[arg(long)]
    pub lr: Option<f64>,
    /// BalancedSubnet's `a` in `-(1 - a) L_forget + a L_retain` (default 0.7).
    #[arg(long)]
    pub alpha: Option<f64>,
    #[command(flatten)]
    pub backend: crate::BackendArg,
    /// Output directory.
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,
    /// No progress line.
    #[arg(long)]
    pub quiet: bool,
    /// Run only shard I of N (runs I-1, I-1+N, ... of the method list) and write a shard
    /// folder for `mnemo merge`.
    #[arg(long, value_name = "I/N")]
    pub shard: Option<Shard>,
    /// Runs at once, one per thread (the memorisation and quality columns do not depend
    /// on it; the measured seconds do, as the runs share the cores; default: all cores
    /// but one when there are more than two). With more than one, no progress line.
    #[arg(long, value_name = "N")]
    pub threads: Option<usize>,
}

/// The methods named by `--methods` (`all` or a comma-separated list).
pub fn parse_methods(s: &str) -> Result<Vec<Method>, CliError> {
    if s.trim() == "all" {
        return Ok(Method::ALL.to_vec());
    }
    let mut out = Vec::new();
    for name in s.split(',').map(str::trim).filter(|n| !n.is_empty()) {
        let m = Method::from_name(name).map_err(|e| CliError::Output(e.to_string()))?;
        if !out.contains(&m) {
            out.push(m);
        }
    }
    if out.is_empty() {
        return Err(CliError::Output("--methods names no method".into()));
    }
    Ok(out)
}

/// The flags that override every method's default setting.
#[derive(Debug, Clone, Copy, Default)]
pub struct Overrides {
    /// `--epochs`.
    pub epochs: Option<usize>,
    /// `--lr`.
    pub lr: Option<f64>,
    /// `--alpha`.
    pub alpha: Option<f64>,
}

impl Overrides {
    fn any(&self) -> bool {
        self.epochs.is_some() || self.lr.is_some() || self.alpha.is_some()
    }
}

/// Every (method, setting) to run: each method at each of `--ratios`, or at its default.
pub fn plan(
    methods: &[Method],
    ratios: Option<&str>,
    over: Overrides,
) -> Result<Vec<MethodSettings>, CliError> {
    let ratios: Option<Vec<f64>> = match ratios {
        None => None,
        Some(s) => Some(
            s.split(',')
                .map(str::trim)
                .filter(|r| !r.is_empty())
                .map(|r| {
                    r.parse::<f64>()
                        .map_err(|_| CliError::Output(format!("--ratios: {r:?} is not a number")))
                })
                .collect::<Result<_, _>>()?,
        ),
    };
    let mut out = Vec::new();
    for &m in methods {
        let mut base = MethodSettings::defaults(m);
        if let Some(e) = over.epochs {
            base.epochs = e;
        }
        if let Some(lr) = over.lr {
            base.lr = lr;
        }
        if let Some(a) = over.alpha {
            base.alpha = a;
        }
        match &ratios {
            // Fine-tunes and regularisers zero nothing: they run once whatever the sweep.
            _ if matches!(
                m.kind(),
                mnemo_measures::unlearn::Kind::FineTune
                    | mnemo_measures::unlearn::Kind::Regulariser
            ) =>
            {
                out.push(base)
            }
            None => out.push(base),
            Some(rs) => out.extend(rs.iter().map(|&ratio| MethodSettings {
                ratio,
                ..base.clone()
            })),
        }
    }
    for s in &out {
        s.validate()
            .map_err(|e| CliError::Output(format!("{}: {e}", s.method.name())))?;
    }
    Ok(out)
}

/// Run `mnemo mitigate`.
pub fn run(args: MitigateArgs) -> Result<(), CliError> {
    // Everything is checked before any work. A spec whose mitigation section names a
    // built-in model stands for `--builtin NAME`.
    let given = args
        .spec
        .as_ref()
        .map(|p| crate::read_spec(p))
        .transpose()?;
    let named = given
        .as_ref()
        .and_then(|s| s.mitigation.as_ref())
        .and_then(|m| m.model.clone());
    // Digests of the model files, so shards of another model are refused by `merge`.
    let mut model_digests = serde_json::Map::new();
    let point = match &args.resume {
        None => None,
        Some(path) => {
            let bytes = fs::read(path).map_err(io_err(path))?;
            model_digests.insert("resume_sha256".into(), sha256(&bytes).into());
            Some(
                mnemo_core::ResumePoint::from_bytes(&bytes)
                    .map_err(|e| CliError::Output(format!("{}: {e}", path.display())))?,
            )
        }
    };
    let builtin = args
        .builtin
        .clone()
        .or(if args.checkpoint.is_none() && point.is_none() {
            named
        } else {
            None
        });
    let checkpoint = args.checkpoint.clone().or(args.resume.clone());
    let (spec, ck, model_label) = match (&builtin, &checkpoint) {
        _ if args.hf.is_some() => {
            let dir = args.hf.clone().unwrap_or_default();
            let spec = given.ok_or_else(|| CliError::Output("--hf needs --spec".into()))?;
            let m = crate::hf_cmd::read_hf(&dir)?;
            (spec, m.checkpoint, dir.display().to_string())
        }
        (Some(name), None) => {
            let b = mnemo_core::builtin::get(name).map_err(|e| CliError::Output(e.to_string()))?;
            let spec = match given {
                Some(s) => s,
                None => b.spec().map_err(|e| CliError::Output(e.to_string()))?,
            };
            let ck = b
                .checkpoint()
                .map_err(|e| CliError::Output(e.to_string()))?;
            (spec, ck, format!("builtin {name}"))
        }
        (None, Some(path)) => {
            let spec = given
                .ok_or_else(|| CliError::Output("--checkpoint and --resume need --spec".into()))?;
            let ck = match (&args.checkpoint, &point) {
                (None, Some(p)) => p.weights.clone(),
                _ => {
                    let bytes = fs::read(path).map_err(io_err(path))?;
                    model_digests.insert("checkpoint_sha256".into(), sha256(&bytes).into());
                    Checkpoint::from_safetensors(&bytes).map_err(|source| CliError::Checkpoint {
                        path: path.clone(),
                        source,
                    })?
                }
            };
            if let Some(p) = &point
                && (p.weights.tensors != ck.tensors
                    || p.spec_digest != mnemo_core::resume::spec_digest(&spec))
            {
                return Err(CliError::Output(
                    "--resume: the resume point belongs to another model or spec".into(),
                ));
            }
            (spec, ck, path.display().to_string())
        }
        _ => {
            return Err(CliError::Output(
                "pass one of --checkpoint CKPT, --resume resume.bin or --builtin NAME".into(),
            ));
        }
    };
    // The spec's mitigation section gives the runs unless the flags name them.
    let section = spec.mitigation.as_ref();
    let over = Overrides {
        epochs: args.epochs,
        lr: args.lr,
        alpha: args.alpha,
    };
    let runs = match (section, &args.methods, &args.ratios) {
        (Some(m), None, None) if !over.any() => m.methods.clone(),
        _ => {
            let methods = parse_methods(args.methods.as_deref().unwrap_or("all"))?;
            plan(&methods, args.ratios.as_deref(), over)?
        }
    };
    let corpus = Corpus::build(&spec.data, spec.tokenizer, spec.model.context, spec.seed)?;
    if args.hf.is_some() {
        // An imported model has its own shape; its vocabulary must be the spec's.
        if ck.vocab != corpus.tokenizer.vocab_size() {
            return Err(CliError::Mismatch {
                path: PathBuf::from(&model_label),
                message: format!(
                    "the model's vocabulary has {} ids; the spec's tokenizer has {}",
                    ck.vocab,
                    corpus.tokenizer.vocab_size()
                ),
            });
        }
        if let Some(r) = runs
            .iter()
            .find(|r| r.method.kind() == mnemo_core::spec::mitigation::Kind::Regulariser)
        {
            return Err(CliError::Output(format!(
                "{} trains a new model from the spec, not the imported one; leave it out with --hf",
                r.method.name()
            )));
        }
    } else {
        ck.fits(&spec.model, corpus.tokenizer.vocab_size())
            .map_err(|message| CliError::Mismatch {
                path: PathBuf::from(&model_label),
                message,
            })?;
    }
    mnemo_measures::tinymem::layout(&corpus).map_err(|e| CliError::Output(e.to_string()))?;
    fs::create_dir_all(&args.out).map_err(io_err(&args.out))?;

    let device = crate::device(args.backend.backend.into())?;
    let start = std::time::Instant::now();
    let clock = move || start.elapsed().as_secs_f64();
    let options = MitigationOptions {
        retain: args
            .retain
            .or(section.map(|m| m.retain))
            .unwrap_or(mnemo_core::spec::mitigation::DEFAULT_RETAIN),
    };
    let mut ctx = block_on(prepare(ck, corpus, options, &spec, &device))
        .map_err(|e| CliError::Output(e.to_string()))?;
    ctx.optimiser = point;
    eprintln!(
        "{model_label}: memorised {:.1}%{}, accuracy {:.2}%, perplexity {:.3}; forget set {}, retain set {}; {} run(s)",
        100.0 * ctx.before.fraction(),
        ctx.before
            .clean_fraction()
            .map_or(String::new(), |c| format!(
                " (clean window {:.1}%)",
                100.0 * c
            )),
        100.0 * ctx.quality_before.accuracy,
        ctx.quality_before.perplexity,
        ctx.data.forget.len(),
        ctx.data.retain.len(),
        runs.len()
    );
    let summary = MitigationSummary::new(&ctx, &spec.name, &model_label);
    let jobs: Vec<usize> = match args.shard {
        Some(shard) => shard.jobs(runs.len()),
        None => (0..runs.len()).collect(),
    };
    let threads = crate::threads::count(args.threads);
    let quiet = args.quiet || threads > 1;
    let results = crate::threads::map_jobs(&jobs, threads, |j| {
        let settings = &runs[j];
        let mut last = 0usize;
        let mut progress = |p: mnemo_measures::unlearn::StepProgress| {
            if !quiet && p.total > 0 && (p.done * 10 / p.total) > last {
                last = p.done * 10 / p.total;
                eprint!(
                    "\r  {} {}: {}%   ",
                    settings.method.name(),
                    settings.label(),
                    last * 10
                );
            }
            ControlFlow::Continue(())
        };
        let r = block_on(run_method(
            &ctx,
            settings,
            spec.seed,
            &device,
            &clock,
            &mut progress,
        ))
        .map_err(|e| CliError::Output(format!("{}: {e}", settings.method.name())))?
        .result;
        eprintln!(
            "\r[{}/{}] {} {}: memorised {:.1}% -> {:.1}%, accuracy {:.2}% -> {:.2}%, perplexity {:.3}, {:.1} s",
            j + 1,
            runs.len(),
            r.method.name(),
            r.settings.label(),
            100.0 * r.memorised_before,
            100.0 * r.memorised_after,
            100.0 * r.accuracy_before,
            100.0 * r.accuracy_after,
            r.perplexity_after,
            r.seconds
        );
        Ok(r)
    })?;
    if let Some(shard) = args.shard {
        // What the merge needs besides the rows: the untouched model's measures (the
        // summary without rows), the same in every shard.
        let mut opts = serde_json::Map::new();
        opts.insert("model".into(), model_label.clone().into());
        opts.insert("retain".into(), options.retain.into());
        opts.insert(
            "runs".into(),
            serde_json::to_value(&runs).map_err(|e| CliError::Output(e.to_string()))?,
        );
        opts.extend(model_digests);
        shard::write_shared(&args.out, SUMMARY, &summary)?;
        return shard::write(
            &args.out,
            COMMAND,
            &spec,
            &serde_json::Value::Object(opts),
            shard,
            runs.len(),
            &results,
        );
    }
    let mut summary = summary;
    summary.results = results.into_iter().map(|r| r.1).collect();
    let files = outputs(&summary)?;
    did_cmd::write_all(&args.out, &files)?;
    eprintln!("wrote {}", args.out.display());
    Ok(())
}

/// A mitigate shard's copy of the summary without rows.
const SUMMARY: &str = "summary.cbor";

/// `mnemo merge` of mitigate shards: the unsharded run's files, each row with the
/// seconds its shard measured.
pub fn merge(set: &ShardSet, out: &Path) -> Result<(), CliError> {
    let mut summary: MitigationSummary = set.shared(SUMMARY)?;
    summary.results = set.results()?;
    let files = outputs(&summary)?;
    did_cmd::write_all(out, &files)?;
    eprintln!(
        "merged {} runs from {} shards; wrote {}",
        summary.results.len(),
        set.dirs.len(),
        out.display()
    );
    Ok(())
}

fn outputs(summary: &MitigationSummary) -> Result<Vec<(&'static str, String)>, CliError> {
    let results = &summary.results;
    let refs = reference_points(results, summary.is_backdoor(), summary.layers);
    let mut files = mnemo_measures::export::mitigation_tables(results)?;
    files.push(("mitigation.json", crate::json_doc(summary)?));
    files.push((
        "tradeoff.svg",
        svg_of((900, 560), |a| tradeoff_chart(a, results, &refs)),
    ));
    for m in Measure::ALL {
        let name: &'static str = match m {
            Measure::Memorised => "memorised.svg",
            Measure::Accuracy => "accuracy.svg",
            Measure::Perplexity => "perplexity.svg",
            Measure::Seconds => "seconds.svg",
        };
        files.push((name, svg_of((900, 480), |a| measure_chart(a, results, m))));
    }
    Ok(files)
}

/// `mnemo pack`: compress a checkpoint for shipping as a built-in model.
pub fn pack(checkpoint: &Path, out: &Path) -> Result<(), CliError> {
    let bytes = fs::read(checkpoint).map_err(io_err(checkpoint))?;
    let ck = mnemo_core::Checkpoint::from_safetensors(&bytes).map_err(|source| {
        CliError::Checkpoint {
            path: checkpoint.to_path_buf(),
            source,
        }
    })?;
    let packed = mnemo_core::builtin::pack(&bytes);
    fs::write(out, &packed).map_err(io_err(out))?;
    eprintln!(
        "step {}: {} -> {} bytes, wrote {}",
        ck.step,
        bytes.len(),
        packed.len(),
        out.display()
    );
    Ok(())
}
