//! `mnemo counterfactual` and `mnemo bench counterfactual`: counterfactual memorisation
//! from an ensemble of models trained on random subsets.

use std::ops::ControlFlow;
use std::path::{Path, PathBuf};

use indicatif::{ProgressBar, ProgressStyle};
use mnemo_core::{BackendKind, Corpus, ExperimentSpec};
use mnemo_measures::counterfactual::{
    CounterfactualResult, MemberScores, counterfactual_result, plan_ensemble, run_ensemble_threads,
    run_member_blocking,
};
use mnemo_plots::counterfactual::{in_out_scatter, mem_histogram};
use mnemo_plots::did::svg_of;

use crate::shard::{self, Shard, ShardSet};
use crate::{CliError, device, did_cmd, read_spec};

/// The spec with its counterfactual section (defaults when absent), `models` overriding
/// the number of models; validated.
fn with_settings(
    mut spec: ExperimentSpec,
    models: Option<usize>,
) -> Result<ExperimentSpec, CliError> {
    let mut settings = spec.counterfactual.clone().unwrap_or_default();
    if let Some(m) = models {
        settings.models = m;
    }
    spec.counterfactual = Some(settings);
    spec.validate().map_err(|source| CliError::Spec {
        path: PathBuf::from("--models"),
        source,
    })?;
    Ok(spec)
}

fn run(
    spec: &ExperimentSpec,
    backend: BackendKind,
    quiet: bool,
    threads: usize,
) -> Result<(Corpus, CounterfactualResult, f64), CliError> {
    let corpus = Corpus::build(&spec.data, spec.tokenizer, spec.model.context, spec.seed)
        .map_err(mnemo_core::TrainError::from)?;
    let settings = spec.counterfactual.clone().unwrap_or_default();
    let plan = plan_ensemble(&corpus, &settings, spec.seed)?;
    let bar = if quiet {
        ProgressBar::hidden()
    } else {
        ProgressBar::new(plan.models() as u64)
    };
    bar.set_style(
        ProgressStyle::with_template("{bar:40} model {pos}/{len}  eta {eta}")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    let start = std::time::Instant::now();
    let dev = device(backend)?;
    let result = run_ensemble_threads(spec, &corpus, &plan, &dev, threads, |j, _| {
        bar.set_position(j as u64);
        ControlFlow::Continue(())
    })?;
    bar.finish_and_clear();
    Ok((corpus, result, start.elapsed().as_secs_f64()))
}

/// `mnemo counterfactual`; with `shard`, only that shard's members, written as a shard
/// folder for `mnemo merge`.
pub fn counterfactual(
    spec_path: PathBuf,
    out: PathBuf,
    models: Option<usize>,
    backend: BackendKind,
    quiet: bool,
    shard: Option<Shard>,
    threads: Option<usize>,
) -> Result<(), CliError> {
    let spec = with_settings(read_spec(&spec_path)?, models)?;
    let settings = spec.counterfactual.clone().unwrap_or_default();
    if let Some(shard) = shard {
        return run_shard(&spec, shard, backend, &out, quiet);
    }
    eprintln!(
        "training {} models, each on {:.0}% of the training texts",
        settings.models,
        settings.fraction * 100.0
    );
    let threads = crate::threads::count(threads);
    let (_, result, secs) = run(&spec, backend, quiet, threads)?;
    write_outputs(&spec, &result, &out)?;
    eprintln!(
        "{} models in {secs:.1} s; mem defined for {} of {} training texts. Most memorised:",
        result.models,
        result.defined(),
        result.instances.len()
    );
    for &i in result.ranked().iter().take(5) {
        let inst = &result.instances[i];
        if let Some(m) = inst.mem.diff {
            eprintln!(
                "  {m:+.3}  #{} (x{})  {}",
                inst.instance, inst.copies, inst.text
            );
        }
    }
    eprintln!("wrote {}", out.display());
    Ok(())
}

/// The files of `mnemo counterfactual` (the same whether sharded and merged or not).
fn write_outputs(
    spec: &ExperimentSpec,
    result: &CounterfactualResult,
    out: &Path,
) -> Result<(), CliError> {
    let mut files = mnemo_measures::export::counterfactual_tables(result)?;
    let size = (800, 480);
    files.extend([
        ("counterfactual.json", crate::json_doc(result)?),
        (
            "mem_histogram.svg",
            svg_of(size, |a| mem_histogram(a, result)),
        ),
        ("in_out.svg", svg_of(size, |a| in_out_scatter(a, result))),
        ("spec.json", spec.to_json()),
    ]);
    did_cmd::write_all(out, &files)
}

/// Train and score shard `shard`'s members (member `j` is job `j`) and write the shard
/// folder.
fn run_shard(
    spec: &ExperimentSpec,
    shard: Shard,
    backend: BackendKind,
    out: &Path,
    quiet: bool,
) -> Result<(), CliError> {
    let corpus = Corpus::build(&spec.data, spec.tokenizer, spec.model.context, spec.seed)
        .map_err(mnemo_core::TrainError::from)?;
    let settings = spec.counterfactual.clone().unwrap_or_default();
    let plan = plan_ensemble(&corpus, &settings, spec.seed)?;
    let jobs = shard.jobs(plan.models());
    eprintln!(
        "shard {shard}: training {} of {} models",
        jobs.len(),
        plan.models()
    );
    let bar = if quiet {
        ProgressBar::hidden()
    } else {
        ProgressBar::new(jobs.len() as u64)
    };
    let dev = device(backend)?;
    let mut results = Vec::with_capacity(jobs.len());
    for (k, &j) in jobs.iter().enumerate() {
        bar.set_position(k as u64);
        results.push((j, run_member_blocking(spec, &corpus, &plan, j, &dev)?));
    }
    bar.finish_and_clear();
    shard::write(
        out,
        COMMAND,
        spec,
        &serde_json::json!({}),
        shard,
        plan.models(),
        &results,
    )
}

/// The shards' name for this command.
pub const COMMAND: &str = "counterfactual";

/// `mnemo merge` of counterfactual shards: the unsharded run's files.
pub fn merge(set: &ShardSet, out: &Path) -> Result<(), CliError> {
    let spec = &set.spec;
    let corpus = Corpus::build(&spec.data, spec.tokenizer, spec.model.context, spec.seed)
        .map_err(mnemo_core::TrainError::from)?;
    let settings = spec.counterfactual.clone().unwrap_or_default();
    let plan = plan_ensemble(&corpus, &settings, spec.seed)?;
    let scores: Vec<MemberScores> = set.results()?;
    if scores.len() != plan.models() {
        return Err(CliError::Output(format!(
            "merge: the shards hold {} members, the spec plans {}",
            scores.len(),
            plan.models()
        )));
    }
    let result = counterfactual_result(&plan, &corpus, &scores);
    write_outputs(spec, &result, out)?;
    eprintln!(
        "merged {} members from {} shards; wrote {}",
        result.models,
        set.dirs.len(),
        out.display()
    );
    Ok(())
}

/// `mnemo bench counterfactual`: time per ensemble member and for the whole ensemble of
/// the counterfactual demo on the native CPU backend.
pub fn bench(models: usize, threads: Option<usize>, json: bool) -> Result<(), CliError> {
    let spec = with_settings(ExperimentSpec::counterfactual_demo(), Some(models))?;
    let threads = crate::threads::count(threads);
    let (_, result, secs) = run(&spec, BackendKind::Flex, true, 1)?;
    let pooled = match threads {
        1 => None,
        _ => Some(run(&spec, BackendKind::Flex, true, threads)?),
    };
    let pool_secs = pooled.as_ref().map_or(secs, |(_, _, s)| *s);
    let same = pooled.as_ref().is_none_or(|(_, r, _)| *r == result);
    if json {
        let doc = serde_json::json!({
            "models": result.models,
            "threads": threads,
            "one_thread_s": secs,
            "pool_s": pool_secs,
            "speedup": secs / pool_secs,
            "same_numbers": same,
        });
        println!("{doc}");
        return Ok(());
    }
    println!(
        "counterfactual demo ({} models, 2 layers, d_model {}, {} epochs on half the texts) on {}",
        result.models,
        spec.model.d_model,
        match spec.training.duration {
            mnemo_core::spec::Duration::Epochs(e) => e,
            mnemo_core::spec::Duration::Steps(s) => s,
        },
        BackendKind::Flex.label()
    );
    println!(
        "  per member (train + score): {:8.1} ms",
        secs * 1000.0 / result.models.max(1) as f64
    );
    println!("  whole ensemble:             {secs:8.2} s");
    if threads > 1 {
        println!(
            "  whole ensemble, {threads} threads: {pool_secs:8.2} s  ({:.2}x; same numbers: {})",
            secs / pool_secs,
            if same { "yes" } else { "NO" }
        );
    }
    Ok(())
}
