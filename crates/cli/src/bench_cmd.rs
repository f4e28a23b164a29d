//! `mnemo bench train` and `mnemo bench export-init`: native training and evaluation
//! speed on the benchmark model, and what a reference implementation needs to start
//! from the same weights and data (used by `tests/bench/compare`).

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Instant;

use clap::{Subcommand, ValueEnum};
use mnemo_core::spec::{DataSource, Duration, Outcome, SplitMode};
use mnemo_core::train::{ADAMW_EPSILON, Trainer, block_on};
use mnemo_core::{BackendKind, ExperimentSpec, Gpt, TokenizerKind, TrainError};
use mnemo_measures::eval::evaluate;
use serde_json::{Value, json};

use crate::{Backend, CliError, device, io_err};

/// Windows in the benchmark text (8 batches of 32 for the evaluation pass).
const BENCH_WINDOWS: usize = 256;
/// Characters per window: with BOS and EOS, 151 tokens, i.e. 150 targets.
const WINDOW: usize = 149;

/// Which model `mnemo bench train` times.
#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum BenchModel {
    /// TinyMem-size: 2 layers, d_model 128, 4 heads, context 150, batch 32.
    Tinymem,
    /// The browser demo: 2 layers, d_model 64, 4 heads, batch 8.
    Demo,
}

/// Overrides of the benchmarked models' size (`mnemo bench train --layers --d-model`),
/// for timing bigger models (tests/bench/gpu).
#[derive(clap::Args, Clone, Copy, Default)]
pub struct BenchSize {
    /// Transformer layers, 1-8 (default: the model's own, 2).
    #[arg(long)]
    pub layers: Option<usize>,
    /// Model width, 32-256 and a multiple of the 4 heads (default: the model's own).
    #[arg(long)]
    pub d_model: Option<usize>,
    /// Read the text as UTF-8 bytes (a vocabulary of 259, as a model of real text has),
    /// so that the output head and its loss weigh as they do there (default: the model's
    /// own tokenizer, 14 digits for the TinyMem-size model).
    #[arg(long)]
    pub bytes: bool,
}

impl BenchSize {
    fn apply(self, mut spec: ExperimentSpec) -> ExperimentSpec {
        if let Some(l) = self.layers {
            spec.model.n_layers = l;
        }
        if let Some(d) = self.d_model {
            spec.model.d_model = d;
        }
        if self.bytes {
            spec.tokenizer = TokenizerKind::Byte;
        }
        spec
    }
}

/// The benchmark text: random digits in groups of three, 256 windows of 149 characters.
pub fn bench_text() -> String {
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    (0..WINDOW * BENCH_WINDOWS)
        .map(|i| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            if i % 4 == 3 {
                ' '
            } else {
                char::from(b'0' + (x % 10) as u8)
            }
        })
        .collect()
}

/// The benchmark spec: the TinyMem-size model on windows of random digits that fill the
/// context exactly (32 x 150 target tokens per step), `steps + 1` steps (one warm-up).
pub fn bench_spec(steps: usize) -> ExperimentSpec {
    let mut spec = ExperimentSpec::tinymem_example();
    spec.data.source = DataSource::Text {
        text: bench_text(),
        split: SplitMode::Windows { length: WINDOW },
    };
    spec.data.heldout_fraction = 0.0;
    spec.training.duration = Duration::Steps(steps + 1);
    spec.training.checkpoint_every = 0;
    spec
}

/// The process's peak resident set size so far, in MiB (`VmHWM`; Linux only).
fn peak_rss_mib() -> Option<f64> {
    let status = fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib / 1024.0)
}

/// Reset the peak resident set size to the current one (Linux; best effort), so that a
/// row's peak is its own rather than the process's so far.
fn reset_peak_rss() {
    let _ = fs::write("/proc/self/clear_refs", "5");
}

/// One measured model on one backend.
struct Row {
    model: &'static str,
    about: &'static str,
    backend: BackendKind,
    device: String,
    n_layers: usize,
    d_model: usize,
    timed_steps: usize,
    ms_per_step: f64,
    train_tokens_per_s: f64,
    tokens_per_step: usize,
    eval_sequences: usize,
    eval_batch: usize,
    eval_seconds: f64,
    eval_tokens: usize,
    peak_rss_mib: Option<f64>,
}

impl Row {
    fn eval_sequences_per_s(&self) -> f64 {
        self.eval_sequences as f64 / self.eval_seconds.max(1e-12)
    }

    fn json(&self) -> Value {
        json!({
            "model": self.model,
            "about": self.about,
            "backend": backend_name(self.backend),
            "label": self.backend.label(),
            "device": self.device,
            "n_layers": self.n_layers,
            "d_model": self.d_model,
            "timed_steps": self.timed_steps,
            "tokens_per_step": self.tokens_per_step,
            "ms_per_step": self.ms_per_step,
            "train_tokens_per_s": self.train_tokens_per_s,
            "eval_sequences": self.eval_sequences,
            "eval_batch": self.eval_batch,
            "eval_seconds": self.eval_seconds,
            "eval_sequences_per_s": self.eval_sequences_per_s(),
            "eval_tokens_per_s": self.eval_tokens as f64 / self.eval_seconds.max(1e-12),
            "peak_rss_mib": self.peak_rss_mib,
        })
    }
}

fn backend_name(kind: BackendKind) -> &'static str {
    match kind {
        BackendKind::Flex => "flex",
        BackendKind::Ndarray => "ndarray",
        BackendKind::Wgpu => "wgpu",
        BackendKind::Cuda => "cuda",
    }
}

/// Train `spec` for one warm-up step and the rest timed, then evaluate the per-sequence
/// surprisal of every training instance (forward only, no autodiff graph) in batches of
/// the training batch size, after one warm-up batch.
fn measure(
    model: &'static str,
    about: &'static str,
    spec: &ExperimentSpec,
    kind: BackendKind,
    dev: &mnemo_core::native::NativeDevice,
) -> Result<Row, CliError> {
    let (device_name, dev) = (dev.name.clone(), &dev.device);
    reset_peak_rss();
    let mut trainer = Trainer::new(spec.clone(), dev.clone())?;
    // One warm-up step (allocations, kernel selection), then the timed ones.
    block_on(trainer.step())?;
    let (tokens_before, steps_before) = (trainer.tokens_seen(), trainer.steps_done());
    let start = Instant::now();
    while block_on(trainer.step())?.is_some() {}
    let secs = start.elapsed().as_secs_f64().max(1e-12);
    let timed = (trainer.steps_done() - steps_before).max(1);
    let tokens = trainer.tokens_seen() - tokens_before;

    let ck = block_on(trainer.checkpoint())?;
    let net = Gpt::from_checkpoint(&ck, dev).map_err(TrainError::from)?;
    let corpus = trainer.corpus();
    let ids = &corpus.train;
    let batch = spec.training.batch_size.max(1);
    let warm = &ids[..batch.min(ids.len())];
    block_on(evaluate(&net, corpus, warm, Outcome::Surprisal, batch))?;
    let start = Instant::now();
    let scores = block_on(evaluate(&net, corpus, ids, Outcome::Surprisal, batch))?;
    let eval_seconds = start.elapsed().as_secs_f64();
    let eval_tokens = ids
        .iter()
        .filter_map(|&i| corpus.get(i))
        .map(|x| x.tokens.len().saturating_sub(1))
        .sum();
    Ok(Row {
        model,
        about,
        backend: kind,
        device: device_name,
        n_layers: spec.model.n_layers,
        d_model: spec.model.d_model,
        timed_steps: timed,
        ms_per_step: secs * 1000.0 / timed as f64,
        train_tokens_per_s: tokens as f64 / secs,
        tokens_per_step: tokens / timed,
        eval_sequences: scores.len(),
        eval_batch: batch,
        eval_seconds,
        eval_tokens,
        peak_rss_mib: peak_rss_mib(),
    })
}

/// `mnemo bench train`: a table, or JSON with `--json`.
pub fn bench_train(
    steps: usize,
    backend: Option<Backend>,
    model: Option<BenchModel>,
    size: BenchSize,
    as_json: bool,
) -> Result<(), CliError> {
    let steps = steps.max(1);
    let mut demo = ExperimentSpec::demo();
    demo.training.duration = Duration::Steps(steps * 4 + 1);
    demo.training.checkpoint_every = 0;
    let models = [
        (
            BenchModel::Tinymem,
            "tinymem-size",
            "2 layers, d_model 128, 4 heads, context 150, batch 32",
            bench_spec(steps),
        ),
        (
            BenchModel::Demo,
            "demo",
            "the browser demo: 2 layers, d_model 64, 4 heads, batch 8",
            demo,
        ),
    ]
    .map(|(which, name, about, spec)| (which, name, about, size.apply(spec)));
    for (_, _, _, spec) in models.iter().filter(|m| model.is_none_or(|w| w == m.0)) {
        spec.validate().map_err(|source| CliError::Spec {
            path: PathBuf::from("--layers/--d-model"),
            source,
        })?;
    }
    let kinds: Vec<BackendKind> = match backend {
        Some(b) => {
            let kind = BackendKind::from(b);
            // A backend asked for by name must be there.
            device(kind)?;
            vec![kind]
        }
        None => vec![BackendKind::Flex, BackendKind::Ndarray],
    };
    let mut stdout = std::io::stdout().lock();
    if !as_json {
        let _ = writeln!(
            stdout,
            "{:<14} {:<16} {:>10} {:>12} {:>14} {:>10}",
            "model", "backend", "ms/step", "tokens/s", "eval seq/s", "peak MiB"
        );
    }
    let mut rows = Vec::new();
    for (which, name, about, spec) in models {
        if model.is_some_and(|m| m != which) {
            continue;
        }
        for &kind in &kinds {
            // Backends not asked for by name are skipped when this build lacks them.
            let Ok(dev) = mnemo_core::native::device(kind) else {
                continue;
            };
            let row = measure(name, about, &spec, kind, &dev)?;
            if !as_json {
                let _ = writeln!(
                    stdout,
                    "{:<14} {:<16} {:>10.1} {:>12.0} {:>14.1} {:>10}",
                    row.model,
                    row.device,
                    row.ms_per_step,
                    row.train_tokens_per_s,
                    row.eval_sequences_per_s(),
                    row.peak_rss_mib
                        .map_or_else(|| "-".to_string(), |m| format!("{m:.0}"))
                );
            }
            rows.push(row);
        }
        if !as_json {
            let tokens = if spec.tokenizer == TokenizerKind::Byte {
                ", bytes (vocabulary 259)"
            } else {
                ""
            };
            let _ = writeln!(
                stdout,
                "  ({name}: {about}; here {} layers, d_model {}{tokens})",
                spec.model.n_layers, spec.model.d_model
            );
        }
    }
    if as_json {
        let threads = std::thread::available_parallelism().map_or(0, |n| n.get());
        let out = json!({
            "available_parallelism": threads,
            "rayon_num_threads": std::env::var("RAYON_NUM_THREADS").ok(),
            "burn_rayon": cfg!(feature = "rayon"),
            "burn_simd": cfg!(feature = "simd"),
            "rows": rows.iter().map(Row::json).collect::<Vec<_>>(),
        });
        let _ = writeln!(stdout, "{out:#}");
    } else {
        let _ = writeln!(
            stdout,
            "  (burn's rayon threads {}, SIMD kernels {})",
            if cfg!(feature = "rayon") { "on" } else { "off" },
            if cfg!(feature = "simd") { "on" } else { "off" },
        );
    }
    Ok(())
}

/// Rows of `t` values of a 2-D tensor read back to the host.
fn rows<E: mnemo_core::burn::tensor::Element>(
    data: &mnemo_core::burn::tensor::TensorData,
    t: usize,
) -> Vec<Vec<E>> {
    let flat: Vec<E> = data.iter::<E>().collect();
    flat.chunks(t.max(1)).map(<[E]>::to_vec).collect()
}

/// `mnemo bench export-init`: the benchmark model's initial weights (`init.safetensors`),
/// its data, order, learning rates and optimiser settings, the first batch as Mnemo
/// builds it, Mnemo's losses of the first `check_steps` steps and the per-sequence
/// surprisal of the first evaluation batch under the initial weights (`bench.json`), and
/// the benchmark text (`text.txt`), all for `steps` timed steps after one warm-up.
pub fn export_init(out: &Path, steps: usize, check_steps: usize) -> Result<(), CliError> {
    let spec = bench_spec(steps.max(1));
    let kind = BackendKind::Flex;
    let dev = device(kind)?;
    let mut trainer = Trainer::new(spec.clone(), dev.clone())?;
    fs::create_dir_all(out).map_err(io_err(out))?;

    let init = block_on(trainer.checkpoint())?;
    let path = out.join("init.safetensors");
    let bytes = init.to_safetensors().map_err(TrainError::from)?;
    fs::write(&path, bytes).map_err(io_err(&path))?;

    let total = trainer.total_steps();
    let order: Vec<Vec<u32>> = (1..=total).map(|s| trainer.batch_ids(s).to_vec()).collect();
    let lr: Vec<f64> = (1..=total).map(|s| trainer.lr_at(s)).collect();
    let first = order.first().cloned().unwrap_or_default();
    let (inputs, targets, mask, n_tokens) = trainer.batch_tensors(&first, &dev);
    let [_, t] = mask.dims();
    let read = |e: mnemo_core::burn::tensor::ExecutionError| TrainError::Device(format!("{e:?}"));
    let inputs: Vec<Vec<i64>> = rows(&block_on(inputs.into_data_async()).map_err(read)?, t);
    let targets: Vec<Vec<i64>> = rows(&block_on(targets.into_data_async()).map_err(read)?, t);
    let mask: Vec<Vec<f32>> = rows(&block_on(mask.into_data_async()).map_err(read)?, t);

    let corpus = trainer.corpus().clone();
    let corpus = &corpus;
    let batch = spec.training.batch_size.max(1);
    let eval_ids = corpus.train.clone();
    let net0 = Gpt::from_checkpoint(&init, &dev).map_err(TrainError::from)?;
    let first_eval = &eval_ids[..batch.min(eval_ids.len())];
    let first_eval_surprisal = block_on(evaluate(
        &net0,
        corpus,
        first_eval,
        Outcome::Surprisal,
        batch,
    ))?;
    let instances: Vec<&[u32]> = corpus
        .instances
        .iter()
        .map(|i| i.tokens.as_slice())
        .collect();
    let t_cfg = &spec.training;
    let mut doc = json!({
        "about": "Mnemo's benchmark model: initial weights in init.safetensors (GPT-2 names, linear weights [in, out]); training step s (1-based) uses the instances order[s-1] and learning rate lr[s-1]; step 1 is the warm-up",
        "spec": spec,
        "backend": kind.label(),
        "vocab": corpus.tokenizer.vocab_size(),
        "pad": corpus.tokenizer.pad(),
        "batch_size": batch,
        "total_steps": total,
        "optimizer": {
            "name": "AdamW",
            "beta_1": t_cfg.betas.0,
            "beta_2": t_cfg.betas.1,
            "epsilon": f64::from(ADAMW_EPSILON),
            "weight_decay": t_cfg.weight_decay,
        },
        "lr": lr,
        "instances": instances,
        "order": order,
        "eval_ids": eval_ids,
        "first_batch": {
            "inputs": inputs,
            "targets": targets,
            "mask": mask,
            "n_tokens": n_tokens,
        },
        "mnemo_first_eval_surprisal": first_eval_surprisal,
    });

    let mut losses = Vec::new();
    for _ in 0..check_steps.min(total) {
        match block_on(trainer.step())? {
            Some(r) => losses.push(f64::from(r.loss)),
            None => break,
        }
    }
    doc["mnemo_losses"] = json!(losses);

    let path = out.join("bench.json");
    fs::write(&path, doc.to_string()).map_err(io_err(&path))?;
    let path = out.join("text.txt");
    fs::write(&path, bench_text()).map_err(io_err(&path))?;
    eprintln!(
        "wrote init.safetensors, bench.json ({} steps, {} instances, vocabulary {}, first losses {:?}) and text.txt into {}",
        total,
        corpus.instances.len(),
        corpus.tokenizer.vocab_size(),
        losses,
        out.display()
    );
    Ok(())
}

/// `mnemo bench`'s subcommands.
#[derive(Subcommand)]
pub enum Bench {
    /// Training tokens/s of the TinyMem-size model (2 layers, d_model 128, 4 heads,
    /// context 150, batch 32) and of the browser demo on each native CPU backend of this
    /// build, then evaluation sequences/s (per-sequence surprisal, forward only, in
    /// batches of the training batch size) and the peak resident memory.
    Train {
        /// Timed steps (after one warm-up step).
        #[arg(long, default_value_t = 5)]
        steps: usize,
        /// Only this backend (default: every CPU backend compiled in; cpu, wgpu and cuda
        /// must be there when named).
        #[arg(long, value_enum)]
        backend: Option<crate::Backend>,
        /// Only this model (default: both).
        #[arg(long, value_enum)]
        model: Option<BenchModel>,
        #[command(flatten)]
        size: BenchSize,
        /// Print JSON (one object per model and backend) instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Write the TinyMem-size benchmark model's initial weights (init.safetensors), its
    /// data, order, learning rates, AdamW settings, first batch and Mnemo's first losses
    /// (bench.json) and its text (text.txt), for a reference implementation to start
    /// from the same state (see tests/bench/compare).
    ExportInit {
        /// Output directory (created if missing).
        #[arg(long, value_name = "DIR")]
        out: PathBuf,
        /// Timed steps the order covers (after one warm-up step), as for `bench train`.
        #[arg(long, default_value_t = 5)]
        steps: usize,
        /// Steps whose losses Mnemo records for the comparison.
        #[arg(long, default_value_t = 3)]
        check_steps: usize,
    },
    /// Time per member and for the whole ensemble of the counterfactual demo.
    Counterfactual {
        /// Models in the ensemble.
        #[arg(long, default_value_t = 16)]
        models: usize,
        /// Threads of the pool, timed against one thread (default: all cores but one
        /// when there are more than two).
        #[arg(long, value_name = "N")]
        threads: Option<usize>,
        /// Print JSON (`models`, `threads`, `one_thread_s`, `pool_s`, `speedup`,
        /// `same_numbers`) instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Time training the constant soft prompt and the generator of the soft-prompt demo
    /// (its target is trained first, untimed).
    Softprompt,
}
