//! Hugging Face checkpoints from the command line: `mnemo eval` (per-token
//! log-probabilities of texts under an imported model or a Mnemo checkpoint),
//! `mnemo export-hf` (a Mnemo checkpoint as a GPT-2 folder) and `mnemo profile
//! --checkpoints` (the memorisation profile of a series of imported checkpoints with a
//! user-supplied data order). Every output is computed before anything is written.

use std::collections::BTreeSet;
use std::fmt::Write as _;
use std::fs;
use std::path::{Path, PathBuf};
use std::time::Instant;

use clap::{Args, ValueEnum};
use mnemo_core::backend::Device;
use mnemo_core::hf::{self, HfModel};
use mnemo_core::spec::Outcome;
use mnemo_core::train::{block_on, token_batch};
use mnemo_core::{BackendKind, Checkpoint, Corpus, Gpt, Tokenizer};
use mnemo_measures::did::DidOptions;
use mnemo_measures::profile::{PanelBuilder, plan_from_order};

use crate::{Backend, CliError, io_err};

/// `mnemo eval`.
#[derive(Args)]
pub struct EvalArgs {
    /// A Hugging Face folder (config.json, model.safetensors, tokenizer.json).
    #[arg(long, value_name = "DIR", required_unless_present = "checkpoint")]
    hf: Option<PathBuf>,
    /// A Mnemo checkpoint instead (with --spec, whose corpus gives the tokenizer).
    #[arg(
        long,
        value_name = "CKPT.safetensors",
        conflicts_with = "hf",
        requires = "spec"
    )]
    checkpoint: Option<PathBuf>,
    /// The spec the checkpoint was trained from.
    #[arg(long, value_name = "SPEC.json")]
    spec: Option<PathBuf>,
    /// The texts, one per line (empty lines are skipped; text numbers count the rest).
    #[arg(long, value_name = "FILE")]
    texts: PathBuf,
    /// Output directory.
    #[arg(long, value_name = "DIR")]
    out: PathBuf,
    /// Backend.
    #[arg(long, value_enum, default_value_t = Backend::Cpu)]
    backend: Backend,
}

/// `mnemo export-hf`.
#[derive(Args)]
pub struct ExportArgs {
    /// The checkpoint (from `mnemo train`).
    #[arg(long, value_name = "CKPT.safetensors")]
    checkpoint: PathBuf,
    /// The spec it was trained from (its corpus gives the tokenizer).
    #[arg(long, value_name = "SPEC.json")]
    spec: PathBuf,
    /// The folder to write (config.json, model.safetensors, tokenizer.json).
    #[arg(long, value_name = "DIR")]
    out: PathBuf,
}

/// The outcome of `mnemo profile --checkpoints`.
#[derive(Clone, Copy, ValueEnum)]
pub enum OutcomeArg {
    /// Mean surprisal, nats/token.
    Surprisal,
    /// Minus the per-token accuracy.
    Accuracy,
    /// Mean rank of the true token.
    Rank,
}

/// The `--checkpoints` mode of `mnemo profile`.
#[derive(Args)]
pub struct SeriesArgs {
    /// Hugging Face folders, in training order, separated by commas.
    #[arg(long, value_name = "DIR1,DIR2,...", value_delimiter = ',', num_args = 1..)]
    pub checkpoints: Vec<PathBuf>,
    /// The data order: a CSV with the header `instance,step`, one row per (instance, step
    /// whose batch held it; steps count from 1, so checkpoint S has seen steps 1..=S);
    /// instance = line number in --data, from 0. Instances never in it are the
    /// never-trained controls. `mnemo train`'s order.csv (`step,instance_id`) is read too.
    #[arg(long, value_name = "ORDER.csv", requires = "checkpoints")]
    pub order: Option<PathBuf>,
    /// The instances, one text per line.
    #[arg(long, value_name = "DATA.txt", requires = "checkpoints")]
    pub data: Option<PathBuf>,
    /// Each checkpoint's step (default: the number at the end of each folder's name, as
    /// in `step-1000` or `checkpoint-1000`).
    #[arg(long, value_name = "S1,S2,...", value_delimiter = ',')]
    pub steps: Vec<usize>,
    /// What is measured on each instance.
    #[arg(long, value_enum, default_value_t = OutcomeArg::Surprisal)]
    pub outcome: OutcomeArg,
    /// Multiplier-bootstrap draws.
    #[arg(long, default_value_t = 1000)]
    pub draws: usize,
    /// Seed of the bootstrap.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Significance level.
    #[arg(long, default_value_t = 0.05)]
    pub alpha: f64,
}

fn hf_err(path: &Path) -> impl FnOnce(hf::HfError) -> CliError + '_ {
    move |e| CliError::Output(format!("{}: {e}", path.display()))
}

/// Read a Hugging Face folder.
pub fn read_hf(dir: &Path) -> Result<HfModel, CliError> {
    hf::read_dir(dir).map_err(hf_err(dir))
}

/// The texts of a file, one per non-empty line.
fn read_lines(path: &Path, keep_empty: bool) -> Result<Vec<String>, CliError> {
    let text = fs::read_to_string(path).map_err(io_err(path))?;
    let lines: Vec<String> = text
        .lines()
        .filter(|l| keep_empty || !l.trim().is_empty())
        .map(str::to_string)
        .collect();
    if lines.is_empty() {
        return Err(CliError::Output(format!("{}: no texts", path.display())));
    }
    Ok(lines)
}

/// A Mnemo checkpoint and its spec's tokenizer.
fn mnemo_model(ck_path: &Path, spec_path: &Path) -> Result<(Checkpoint, Tokenizer), CliError> {
    let spec = crate::read_spec(spec_path)?;
    let corpus = Corpus::build(&spec.data, spec.tokenizer, spec.model.context, spec.seed)?;
    let ck = crate::extract_cmd::load_checkpoint(ck_path, &spec, &corpus)?;
    Ok((ck, corpus.tokenizer))
}

/// The most logits `mnemo eval` holds at once (64 Mi values, 256 MiB).
const EVAL_LOGITS: usize = 64 << 20;

/// Run `mnemo eval`.
pub fn eval(args: EvalArgs) -> Result<(), CliError> {
    let (ck, tokenizer) = match (&args.hf, &args.checkpoint, &args.spec) {
        (Some(dir), _, _) => {
            let m = read_hf(dir)?;
            let tok = m
                .tokenizer
                .ok_or_else(|| CliError::Output(format!("{}: no tokenizer.json", dir.display())))?;
            (m.checkpoint, tok)
        }
        (None, Some(ck), Some(spec)) => mnemo_model(ck, spec)?,
        _ => {
            return Err(CliError::Output(
                "pass --hf DIR or --checkpoint with --spec".into(),
            ));
        }
    };
    let texts = read_lines(&args.texts, false)?;
    let device = crate::device(BackendKind::from(args.backend))?;
    let model = Gpt::from_checkpoint(&ck, &device).map_err(|source| CliError::Checkpoint {
        path: args
            .hf
            .clone()
            .or(args.checkpoint.clone())
            .unwrap_or_default(),
        source,
    })?;
    let corpus = Corpus::from_texts(tokenizer, texts, ck.config.context, &[])?;
    let start = Instant::now();
    let mut logprobs = String::from("text,position,token,logprob\n");
    let mut surprisal = String::from("text,tokens,mean_surprisal\n");
    let mut scored = 0usize;
    // Texts are scored in batches of consecutive texts, right-padded (causal attention:
    // padding after a text does not change its log-probabilities), with the logits of a
    // batch kept under EVAL_LOGITS values.
    let vocab = ck.vocab.max(1);
    let mut start_row = 0;
    let rows = &corpus.instances;
    while start_row < rows.len() {
        let mut end = start_row;
        let mut longest = 0;
        while end < rows.len() {
            let len = rows[end].tokens.len().max(2);
            let wider = longest.max(len);
            if end > start_row && (end + 1 - start_row) * wider * vocab > EVAL_LOGITS {
                break;
            }
            longest = wider;
            end += 1;
        }
        let chunk = &rows[start_row..end];
        start_row = end;
        let tokens: Vec<&[u32]> = chunk.iter().map(|i| i.tokens.as_slice()).collect();
        let (inputs, targets, _, _) = token_batch(&tokens, 0, &device);
        let [_, width] = inputs.dims();
        let lp = block_on(model.token_log_probs(inputs, targets).into_data_async())
            .map_err(|e| CliError::Output(format!("evaluation failed: {e:?}")))?
            .try_into_vec::<f32>()
            .map_err(|e| CliError::Output(format!("evaluation failed: {e:?}")))?;
        for (r, inst) in chunk.iter().enumerate() {
            let t = &inst.tokens;
            if t.len() < 2 {
                let _ = writeln!(surprisal, "{},0,", inst.id);
                continue;
            }
            let n = t.len() - 1;
            let mut sum = 0.0f64;
            for (p, v) in lp[r * width..r * width + n].iter().enumerate() {
                let _ = writeln!(logprobs, "{},{},{},{v}", inst.id, p + 1, t[p + 1]);
                sum -= *v as f64;
            }
            scored += n;
            let _ = writeln!(surprisal, "{},{n},{}", inst.id, sum / n as f64);
        }
    }
    let seconds = start.elapsed().as_secs_f64();
    crate::did_cmd::write_all(
        &args.out,
        &[("logprobs.csv", logprobs), ("surprisal.csv", surprisal)],
    )?;
    eprintln!(
        "{} texts, {scored} tokens scored in {seconds:.2} s ({} truncated to the context of {}); wrote {}",
        corpus.instances.len(),
        corpus.truncated,
        ck.config.context,
        args.out.display()
    );
    Ok(())
}

/// Run `mnemo export-hf`.
pub fn export(args: ExportArgs) -> Result<(), CliError> {
    let (ck, tokenizer) = mnemo_model(&args.checkpoint, &args.spec)?;
    let files = hf::export_gpt2(&ck, &tokenizer).map_err(hf_err(&args.checkpoint))?;
    fs::create_dir_all(&args.out).map_err(io_err(&args.out))?;
    for (name, bytes) in &files {
        let path = args.out.join(name);
        fs::write(&path, bytes).map_err(io_err(&path))?;
    }
    eprintln!(
        "wrote {} (GPT2LMHeadModel, step {}): load it with transformers' \
         AutoModelForCausalLM.from_pretrained and PreTrainedTokenizerFast(tokenizer_file=...)",
        args.out.display(),
        ck.step
    );
    Ok(())
}

/// The number at the end of a folder's name (`step-1000`, `checkpoint-1000`, `step1000`).
fn trailing_number(path: &Path) -> Option<usize> {
    let name = path.file_name()?.to_str()?;
    let digits: String = name
        .chars()
        .rev()
        .take_while(char::is_ascii_digit)
        .collect::<Vec<_>>()
        .into_iter()
        .rev()
        .collect();
    digits.parse().ok()
}

/// Read `instance,step` rows.
fn read_order(path: &Path, n: usize) -> Result<Vec<(usize, u32)>, CliError> {
    let text = fs::read_to_string(path).map_err(io_err(path))?;
    let bad = |line: usize, msg: String| {
        CliError::Output(format!("{}, line {line}: {msg}", path.display()))
    };
    let mut rows = Vec::new();
    // `instance,step`, or `step,instance_id` as `mnemo train` writes its order.csv.
    let mut instance_first = true;
    for (i, line) in text.lines().enumerate() {
        let line_no = i + 1;
        if i == 0 {
            instance_first = match line.trim() {
                "instance,step" | "instance_id,step" => true,
                "step,instance" | "step,instance_id" => false,
                _ => {
                    return Err(bad(
                        line_no,
                        "the header must be `instance,step` (or `step,instance_id`)".into(),
                    ));
                }
            };
            continue;
        }
        if line.trim().is_empty() {
            continue;
        }
        let mut parts = line.split(',');
        let (Some(a), Some(b), None) = (parts.next(), parts.next(), parts.next()) else {
            return Err(bad(line_no, "expected two fields, instance,step".into()));
        };
        let (a, b) = if instance_first { (a, b) } else { (b, a) };
        let inst: usize = a
            .trim()
            .parse()
            .map_err(|_| bad(line_no, format!("instance {a:?} is not a whole number")))?;
        let step: usize = b
            .trim()
            .parse()
            .map_err(|_| bad(line_no, format!("step {b:?} is not a whole number")))?;
        if inst >= n {
            return Err(bad(
                line_no,
                format!("instance {inst}, but the data has {n} lines"),
            ));
        }
        rows.push((step, inst as u32));
    }
    if rows.is_empty() {
        return Err(CliError::Output(format!(
            "{}: no rows: nothing was trained",
            path.display()
        )));
    }
    Ok(rows)
}

/// Run `mnemo profile --checkpoints`: evaluate every instance at every checkpoint (one
/// checkpoint in memory at a time) and estimate the profile.
pub fn profile_series(args: SeriesArgs, out: PathBuf, backend: Backend) -> Result<(), CliError> {
    let (Some(order_path), Some(data_path)) = (&args.order, &args.data) else {
        return Err(CliError::Output(
            "--checkpoints needs --order ORDER.csv and --data DATA.txt".into(),
        ));
    };
    let dirs = &args.checkpoints;
    let steps: Vec<usize> = if args.steps.is_empty() {
        dirs.iter()
            .map(|d| {
                trailing_number(d).ok_or_else(|| {
                    CliError::Output(format!(
                        "{}: no step number at the end of the name; pass --steps",
                        d.display()
                    ))
                })
            })
            .collect::<Result<_, _>>()?
    } else if args.steps.len() != dirs.len() {
        return Err(CliError::Output(format!(
            "--steps has {} values for {} checkpoints",
            args.steps.len(),
            dirs.len()
        )));
    } else {
        args.steps.clone()
    };
    if steps.windows(2).any(|w| w[0] >= w[1]) {
        return Err(CliError::Output(format!(
            "checkpoint steps must increase: {steps:?}"
        )));
    }
    let texts = read_lines(data_path, true)?;
    if let Some(i) = texts.iter().position(|t| t.trim().is_empty()) {
        return Err(CliError::Output(format!(
            "{}, line {}: empty; every line is an instance",
            data_path.display(),
            i + 1
        )));
    }
    let order = read_order(order_path, texts.len())?;
    let first = read_hf(&dirs[0])?;
    let tokenizer = first
        .tokenizer
        .ok_or_else(|| CliError::Output(format!("{}: no tokenizer.json", dirs[0].display())))?;
    let config = first.checkpoint.config;
    drop(first.checkpoint);
    let trained: BTreeSet<u32> = order.iter().map(|&(_, i)| i).collect();
    let heldout: Vec<u32> = (0..texts.len() as u32)
        .filter(|i| !trained.contains(i))
        .collect();
    let corpus = Corpus::from_texts(tokenizer, texts, config.context, &heldout)?;
    let (plan, dropped) = plan_from_order(&corpus, &order, &steps)?;
    let outcome = match args.outcome {
        OutcomeArg::Surprisal => Outcome::Surprisal,
        OutcomeArg::Accuracy => Outcome::Accuracy,
        OutcomeArg::Rank => Outcome::Rank,
    };
    let device: Device = crate::device(BackendKind::from(backend))?;
    eprintln!(
        "{} instances ({} never trained; {dropped} trained ones left out: before the first \
         checkpoint, after the last, or alone in a cohort) at {} checkpoints",
        plan.ids.len(),
        corpus.heldout.len(),
        dirs.len()
    );
    let mut builder = PanelBuilder::new(&plan, outcome);
    let mut times = Vec::new();
    for (dir, step) in dirs.iter().zip(&steps) {
        let start = Instant::now();
        let m = read_hf(dir)?;
        if m.checkpoint.config != config {
            return Err(CliError::Output(format!(
                "{}: a different model from {} ({:?} vs {:?})",
                dir.display(),
                dirs[0].display(),
                m.checkpoint.config,
                config
            )));
        }
        block_on(builder.add_checkpoint(&m.checkpoint, &corpus, &device))?;
        let s = start.elapsed().as_secs_f64();
        times.push(s);
        eprintln!("step {step}: {} evaluated in {s:.2} s", dir.display());
    }
    let panel = builder.finish()?;
    let options = DidOptions {
        alpha: args.alpha,
        draws: args.draws,
        seed: args.seed,
        ..DidOptions::default()
    };
    let result = mnemo_measures::did::estimate(&panel, &options)?;
    crate::did_cmd::write_all(&out, &crate::did_cmd::profile_outputs(&result, &panel)?)?;
    let mean = times.iter().sum::<f64>() / times.len() as f64;
    let inst: Vec<String> = result
        .instantaneous
        .iter()
        .map(|c| format!("{:.3}", c.memorisation))
        .collect();
    eprintln!(
        "{} checkpoints at {mean:.2} s each (loading included); {} cohorts; instantaneous \
         memorisation per cohort: {}; wrote {}",
        times.len(),
        result.cohorts.len(),
        inst.join(" "),
        out.display()
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn step_numbers_come_from_folder_names() {
        assert_eq!(trailing_number(Path::new("run/step-1000")), Some(1000));
        assert_eq!(trailing_number(Path::new("checkpoint-25")), Some(25));
        assert_eq!(trailing_number(Path::new("step143000")), Some(143_000));
        assert_eq!(trailing_number(Path::new("final")), None);
    }
}
