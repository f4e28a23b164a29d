//! `mnemo influence`: train a spec, score every training text's influence on the test
//! texts with TracIn, TracIn-Last, TracIn-WE and TracIn-WE-TopK, and run the
//! case-deletion test (METHODS.md section 4).

use std::fs;
use std::ops::ControlFlow;
use std::path::{Path, PathBuf};

use indicatif::{ProgressBar, ProgressStyle};
use mnemo_core::train::{Trainer, checkpoint_lr, run_blocking};
use mnemo_core::{BackendKind, Checkpoint, Corpus, ExperimentSpec, TrainError};
use mnemo_measures::export;
use mnemo_measures::influence::{
    self, DeletionPlan, DeletionResult, DeletionRow, InfluenceResult, InfluenceRun, agreement,
    plan_deletion, run_deletion_threads,
};
use mnemo_plots::did::svg_of;
use mnemo_plots::influence::{agreement_chart, deletion_chart};
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::shard::{self, Shard, ShardSet};
use crate::{CliError, device, did_cmd, io_err, read_spec};

/// The shards' name for this command.
pub const COMMAND: &str = "influence";

/// What every influence shard computes alike (training and the gradient pass are
/// deterministic), checked byte for byte by the merge: `shared.cbor`.
#[derive(Serialize, Deserialize)]
struct Shared {
    result: InfluenceResult,
    ck_rows: Vec<(usize, f64, String)>,
    /// The checkpoints written under `checkpoints/`: (file name, weights). Kept as
    /// weights, not as safetensors bytes: the order of a safetensors file's metadata
    /// entries changes from run to run.
    checkpoints: Vec<(String, Checkpoint)>,
}

/// A shard's measured seconds (`timings.cbor`): not compared.
#[derive(Serialize, Deserialize)]
struct Timings {
    training: f64,
    gradient_pass: f64,
    case_deletion: f64,
}

/// The distinct removed sets of `plan`, in the order first needed: the shards' jobs.
fn distinct_sets(plan: &DeletionPlan) -> Vec<&Vec<u32>> {
    let mut sets: Vec<&Vec<u32>> = Vec::new();
    for j in &plan.jobs {
        if !sets.contains(&&j.removed) {
            sets.push(&j.removed);
        }
    }
    sets
}

fn bar(quiet: bool, len: usize, template: &str) -> ProgressBar {
    let bar = if quiet {
        ProgressBar::hidden()
    } else {
        ProgressBar::new(len as u64)
    };
    bar.set_style(
        ProgressStyle::with_template(template).unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    bar
}

/// Run the gradient pass with a progress bar: the result and its seconds.
fn gradient_pass(
    run: InfluenceRun,
    quiet: bool,
) -> Result<(influence::InfluenceResult, f64), CliError> {
    let b = bar(
        quiet,
        run.progress().total,
        "{bar:40} {pos}/{len} example gradients  eta {eta}",
    );
    let start = std::time::Instant::now();
    let result = influence::run_blocking(run, |p| {
        b.set_position(p.done as u64);
        ControlFlow::Continue(())
    })?
    .ok_or_else(|| CliError::Output("the influence run stopped early".into()))?;
    b.finish_and_clear();
    Ok((result, start.elapsed().as_secs_f64()))
}

/// `mnemo influence`.
///
/// With `shard`, the training and gradient pass run whole (they are deterministic, so
/// every shard gets the same tables) and the case deletion runs only the shard's distinct
/// retrains (removed set `d`, in the order first needed, is job `d`): a shard folder for
/// `mnemo merge`.
pub fn run(
    spec_path: PathBuf,
    out: PathBuf,
    backend: BackendKind,
    quiet: bool,
    shard: Option<Shard>,
    threads: Option<usize>,
) -> Result<(), CliError> {
    let threads = crate::threads::count(threads);
    let spec = read_spec(&spec_path)?;
    let corpus = Corpus::build(&spec.data, spec.tokenizer, spec.model.context, spec.seed)
        .map_err(TrainError::from)?;
    // Every setting is checked before anything is trained or written.
    influence::check(&spec, &corpus)?;
    let steps = influence::checkpoint_steps(&spec, &corpus)?;
    let dev = device(backend)?;

    // Train, keeping the checkpoints the run sums over and the final one.
    let mut trainer = Trainer::with_corpus(spec.clone(), corpus.clone(), dev.clone())?;
    let total = trainer.total_steps();
    let ck_dir = out.join("checkpoints");
    fs::create_dir_all(&ck_dir).map_err(io_err(&ck_dir))?;
    eprintln!(
        "{} training / {} held-out texts, vocabulary {}, {} steps; influence at steps {:?}",
        corpus.train.len(),
        corpus.heldout.len(),
        corpus.tokenizer.vocab_size(),
        total,
        steps
    );
    let b = bar(quiet, total, "{bar:40} {pos}/{len} steps  {msg}  eta {eta}");
    let mut kept: Vec<Checkpoint> = Vec::new();
    let trained = run_blocking(
        &mut trainer,
        |p| {
            b.set_position(p.step as u64);
            b.set_message(format!("loss {:.4}", p.loss));
            ControlFlow::Continue(())
        },
        |ck| {
            if steps.contains(&ck.step) || ck.step == total {
                kept.push(ck);
            }
            Ok(())
        },
    )?;
    b.finish_and_clear();
    let mut ck_rows = Vec::new();
    let mut ck_files = Vec::new();
    for ck in kept.iter().filter(|c| steps.contains(&c.step)) {
        let file = format!("step_{:06}.safetensors", ck.step);
        let path = ck_dir.join(&file);
        let bytes = ck.to_safetensors().map_err(TrainError::from)?;
        fs::write(&path, &bytes).map_err(io_err(&path))?;
        ck_files.push((file.clone(), ck.clone()));
        ck_rows.push((
            ck.step,
            checkpoint_lr(&spec.training, total, ck.step),
            format!("checkpoints/{file}"),
        ));
    }

    // The gradient pass.
    let run = InfluenceRun::new(&spec, &corpus, &kept, &dev)?;
    let p = run.progress();
    let (result, grad_secs) = gradient_pass(run, quiet)?;
    eprintln!(
        "gradient pass: {} example gradients ({} test + {} training texts at {} checkpoints) in {grad_secs:.2} s",
        p.total,
        result.tests.len(),
        result.train.len(),
        result.checkpoints.len()
    );

    // Case deletion.
    let plan = plan_deletion(&spec, &corpus, &result)?;
    let final_ck = kept
        .iter()
        .find(|c| c.step == total)
        .ok_or_else(|| CliError::Output("no final checkpoint".into()))?;
    if let Some(shard) = shard {
        let sets = distinct_sets(&plan);
        let owned = shard.jobs(sets.len());
        let mine: Vec<usize> = (0..plan.jobs.len())
            .filter(|&j| {
                let d = sets.iter().position(|s| **s == plan.jobs[j].removed);
                d.is_some_and(|d| owned.contains(&d))
            })
            .collect();
        let sub = DeletionPlan {
            tests: plan.tests.clone(),
            jobs: mine.iter().map(|&j| plan.jobs[j].clone()).collect(),
        };
        eprintln!(
            "shard {shard}: {} of {} distinct retrains ({} of {} deletion jobs)",
            owned.len(),
            sets.len(),
            sub.jobs.len(),
            plan.jobs.len()
        );
        let start = std::time::Instant::now();
        let rows = if sub.jobs.is_empty() {
            Vec::new()
        } else {
            let b = bar(
                quiet,
                sub.distinct_retrains(),
                "{bar:40} {pos}/{len} retrains  eta {eta}",
            );
            let d = run_deletion_threads(&spec, &corpus, &sub, final_ck, &dev, threads, |i, _| {
                b.set_position(i as u64);
                ControlFlow::Continue(())
            })?;
            b.finish_and_clear();
            d.rows
        };
        if rows.len() != mine.len() {
            return Err(CliError::Output("the case deletion stopped early".into()));
        }
        // Job d: the rows (plan index, row) of the jobs that remove set d.
        let mut results: Vec<(usize, Vec<(usize, DeletionRow)>)> =
            owned.iter().map(|&d| (d, Vec::new())).collect();
        for (&j, row) in mine.iter().zip(rows) {
            let d = sets.iter().position(|s| **s == plan.jobs[j].removed);
            if let Some(slot) = results.iter_mut().find(|r| Some(r.0) == d) {
                slot.1.push((j, row));
            }
        }
        let shared = Shared {
            result,
            ck_rows,
            checkpoints: ck_files,
        };
        let timings = Timings {
            training: trained.elapsed_s,
            gradient_pass: grad_secs,
            case_deletion: start.elapsed().as_secs_f64(),
        };
        shard::write_shared(&out, SHARED, &shared)?;
        shard::write_shared(&out, TIMINGS, &timings)?;
        return shard::write(
            &out,
            COMMAND,
            &spec,
            &json!({}),
            shard,
            sets.len(),
            &results,
        );
    }
    let start = std::time::Instant::now();
    let deletion = if plan.jobs.is_empty() {
        influence::deletion_result(Vec::new())
    } else {
        eprintln!(
            "case deletion: {} jobs ({} distinct retrains)",
            plan.jobs.len(),
            plan.distinct_retrains()
        );
        let b = bar(
            quiet,
            plan.distinct_retrains(),
            "{bar:40} {pos}/{len} retrains  eta {eta}",
        );
        let d = run_deletion_threads(&spec, &corpus, &plan, final_ck, &dev, threads, |i, _| {
            b.set_position(i as u64);
            ControlFlow::Continue(())
        })?;
        b.finish_and_clear();
        d
    };
    let timings = Timings {
        training: trained.elapsed_s,
        gradient_pass: grad_secs,
        case_deletion: start.elapsed().as_secs_f64(),
    };
    write_outputs(&spec, &corpus, &result, &ck_rows, &deletion, &timings, &out)?;
    report(&corpus, &result, &deletion);
    eprintln!("wrote {}", out.display());
    Ok(())
}

/// `mnemo influence --hf DIR[,DIR...]`: the scores of the spec's test and training texts
/// (its split, in the imported model's own tokens) at one or more Hugging Face
/// checkpoints. An imported folder carries no learning rate, so each checkpoint weighs 1
/// (a common scale: rankings and agreement are unchanged with one checkpoint); the case
/// deletion, which retrains from the spec, is left out (deletion.csv has no rows).
pub fn run_hf(
    spec_path: PathBuf,
    dirs: Vec<PathBuf>,
    out: PathBuf,
    backend: BackendKind,
    quiet: bool,
) -> Result<(), CliError> {
    let spec = read_spec(&spec_path)?;
    let settings = spec
        .influence
        .clone()
        .ok_or(influence::InfluenceError::NoSettings)?;
    let mut checkpoints = Vec::new();
    let mut corpus = None;
    for (k, dir) in dirs.iter().enumerate() {
        let m = crate::hf_cmd::read_hf(dir)?;
        if corpus.is_none() {
            let tokenizer = m
                .tokenizer
                .ok_or_else(|| CliError::Output(format!("{}: no tokenizer.json", dir.display())))?;
            let c = Corpus::build(&spec.data, spec.tokenizer, spec.model.context, spec.seed)
                .map_err(TrainError::from)?;
            corpus = Some(c.retokenised(tokenizer, m.checkpoint.config.context)?);
        }
        let mut ck = m.checkpoint;
        ck.step = k;
        checkpoints.push(influence::WeightedCheckpoint {
            checkpoint: ck,
            lr: 1.0,
        });
    }
    let corpus = corpus.ok_or_else(|| CliError::Output("--hf names no folder".into()))?;
    let (tests, train) = influence::examples(&settings, &corpus)?;
    let dev = device(backend)?;
    let run = InfluenceRun::from_examples(
        settings,
        tests,
        train,
        corpus.tokenizer.bos(),
        checkpoints,
        &dev,
    )?;
    let p = run.progress();
    let (result, grad_secs) = gradient_pass(run, quiet)?;
    let ck_rows: Vec<(usize, f64, String)> = dirs
        .iter()
        .enumerate()
        .map(|(k, d)| (k, 1.0, d.display().to_string()))
        .collect();
    let deletion = influence::deletion_result(Vec::new());
    let timings = Timings {
        training: 0.0,
        gradient_pass: grad_secs,
        case_deletion: 0.0,
    };
    write_outputs(&spec, &corpus, &result, &ck_rows, &deletion, &timings, &out)?;
    eprintln!(
        "gradient pass: {} example gradients at {} Hugging Face checkpoint(s) in {grad_secs:.2} s; no case deletion (it retrains from the spec); wrote {}",
        p.total,
        dirs.len(),
        out.display()
    );
    Ok(())
}

const SHARED: &str = "shared.cbor";
const TIMINGS: &str = "timings.cbor";

/// `mnemo merge` of influence shards: the unsharded run's files. The timings in
/// `influence.json` are shard 1's training and gradient pass and the case-deletion
/// seconds of all shards summed.
pub fn merge(set: &ShardSet, out: &Path) -> Result<(), CliError> {
    let spec = &set.spec;
    let shared: Shared = set.shared(SHARED)?;
    let corpus = Corpus::build(&spec.data, spec.tokenizer, spec.model.context, spec.seed)
        .map_err(TrainError::from)?;
    let plan = plan_deletion(spec, &corpus, &shared.result)?;
    let per_set: Vec<Vec<(usize, DeletionRow)>> = set.results()?;
    let mut rows: Vec<(usize, DeletionRow)> = per_set.into_iter().flatten().collect();
    rows.sort_by_key(|r| r.0);
    if rows.iter().map(|r| r.0).ne(0..plan.jobs.len())
        || set.total_jobs != distinct_sets(&plan).len()
    {
        return Err(CliError::Output(format!(
            "merge: the shards hold {} deletion rows for a plan of {} jobs",
            rows.len(),
            plan.jobs.len()
        )));
    }
    let deletion = influence::deletion_result(rows.into_iter().map(|r| r.1).collect());
    let mut timings: Timings = {
        let path = set.dirs[0].join(TIMINGS);
        let bytes = fs::read(&path).map_err(io_err(&path))?;
        ciborium::from_reader(bytes.as_slice())
            .map_err(|e| CliError::Output(format!("{}: {e}", path.display())))?
    };
    timings.case_deletion = 0.0;
    for dir in &set.dirs {
        let path = dir.join(TIMINGS);
        let bytes = fs::read(&path).map_err(io_err(&path))?;
        let t: Timings = ciborium::from_reader(bytes.as_slice())
            .map_err(|e| CliError::Output(format!("{}: {e}", path.display())))?;
        timings.case_deletion += t.case_deletion;
    }
    let ck_dir = out.join("checkpoints");
    fs::create_dir_all(&ck_dir).map_err(io_err(&ck_dir))?;
    for (file, ck) in &shared.checkpoints {
        let path = ck_dir.join(file);
        let bytes = ck.to_safetensors().map_err(TrainError::from)?;
        fs::write(&path, bytes).map_err(io_err(&path))?;
    }
    write_outputs(
        spec,
        &corpus,
        &shared.result,
        &shared.ck_rows,
        &deletion,
        &timings,
        out,
    )?;
    eprintln!(
        "merged {} deletion rows ({} distinct retrains) from {} shards; wrote {}",
        deletion.rows.len(),
        set.total_jobs,
        set.dirs.len(),
        out.display()
    );
    Ok(())
}

/// The files of `mnemo influence` besides the checkpoints.
fn write_outputs(
    spec: &ExperimentSpec,
    corpus: &Corpus,
    result: &InfluenceResult,
    ck_rows: &[(usize, f64, String)],
    deletion: &DeletionResult,
    timings: &Timings,
    out: &Path,
) -> Result<(), CliError> {
    let mut files = export::influence_tables(result)?;
    files.push(("instances.csv", export::influence_instances(corpus)?));
    files.push(("checkpoints.csv", export::checkpoints_table(ck_rows)?));
    files.push(("deletion.csv", export::deletion_table(deletion)?));
    let summary = summary_json(
        spec,
        corpus,
        result,
        deletion,
        timings.gradient_pass,
        timings.case_deletion,
        timings.training,
    );
    files.push(("influence.json", crate::json_doc(&summary)?));
    let size = (800, 520);
    files.push((
        "agreement.svg",
        svg_of(size, |a| agreement_chart(a, result)),
    ));
    files.push((
        "deletion.svg",
        svg_of(size, |a| deletion_chart(a, deletion)),
    ));
    files.push(("spec.json", spec.to_json()));
    did_cmd::write_all(out, &files)
}

/// `influence.json`: the settings, the checkpoints, timings, each test text's top
/// proponents and opponents per method, the agreement matrix and the deletion summary.
fn summary_json(
    spec: &ExperimentSpec,
    corpus: &Corpus,
    result: &InfluenceResult,
    deletion: &DeletionResult,
    grad_secs: f64,
    deletion_secs: f64,
    train_secs: f64,
) -> serde_json::Value {
    let text = |id: u32| corpus.get(id).map(|i| i.text.clone()).unwrap_or_default();
    let tests: Vec<serde_json::Value> = result
        .tests
        .iter()
        .map(|t| {
            json!({
                "test": t.test,
                "text": text(t.test),
                "heldout": corpus.heldout.contains(&t.test),
                "methods": t.methods.iter().map(|m| json!({
                    "method": m.method.key(),
                    "proponents": m.proponents,
                    "opponents": m.opponents,
                })).collect::<Vec<_>>(),
            })
        })
        .collect();
    json!({
        "settings": result.settings,
        "model": spec.model,
        "seed": spec.seed,
        "checkpoints": result.checkpoints.iter().map(|(s, lr)| json!({"step": s, "learning_rate": lr})).collect::<Vec<_>>(),
        "train_texts": result.train.len(),
        "timings_s": {
            "training": train_secs,
            "gradient_pass": grad_secs,
            "case_deletion": deletion_secs,
        },
        "agreement": agreement(result),
        "deletion": deletion.summary,
        "tests": tests,
    })
}

fn report(corpus: &Corpus, result: &InfluenceResult, deletion: &DeletionResult) {
    let short = |id: u32| {
        let t = corpus.get(id).map(|i| i.text.as_str()).unwrap_or("");
        t.chars().take(48).collect::<String>()
    };
    for t in result.tests.iter().take(3) {
        eprintln!("test #{} {:?}", t.test, short(t.test));
        for m in &t.methods {
            let top: Vec<String> = m
                .proponents
                .iter()
                .take(3)
                .map(|p| format!("#{} {:+.3e}", p.train, p.score))
                .collect();
            eprintln!(
                "  {:<15} top proponents: {}",
                m.method.label(),
                top.join(", ")
            );
        }
    }
    if !deletion.summary.is_empty() {
        eprintln!("case deletion: mean loss rise (nats/token) [range of random draws]");
        for s in &deletion.summary {
            eprintln!(
                "  {:<15} k={:<3} {:+.4}  (sd {:.4}, n {}){}",
                s.removal.label(),
                s.k,
                s.mean_rise,
                s.sd_rise,
                s.n,
                if s.removal == influence::Removal::Random {
                    format!(" [{:+.4}, {:+.4}]", s.draw_min, s.draw_max)
                } else {
                    String::new()
                }
            );
        }
    }
}
