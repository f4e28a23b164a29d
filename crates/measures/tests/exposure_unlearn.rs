#![allow(clippy::unwrap_used)] // tests unwrap: a failure is the test failing
//! Exposure after unlearning: the canaries as a forget set (one row per trained canary,
//! the control left out, a retain set of plain training texts, the suffix at the
//! secret); on a seeded run, balanced-subnet (ratio 0.2) raises the canaries' loss more
//! than the retain set's and makes every trained secret less likely. Measured here:
//! forget 0.500 -> 3.025 nats/token, retain 0.365 -> 0.651; the x32 secret's
//! log-perplexity 0.7 -> 41.5 bits, yet its exposure only 9.96 -> 8.96 bits: every PIN
//! became less likely, and the secret stays near the top of the ranking.

use std::ops::ControlFlow;

use mnemo_core::Gpt;
use mnemo_core::backend::Device;
use mnemo_core::corpus::InstanceKind;
use mnemo_core::spec::CanarySet;
use mnemo_core::spec::ExperimentSpec;
use mnemo_core::spec::mitigation::{Method, MethodSettings};
use mnemo_core::train::{Trainer, block_on};
use mnemo_measures::exposure::forget::{forget_set, unlearned_run};
use mnemo_measures::exposure::{ExposureResult, measure_blocking};
use mnemo_measures::unlearn::{StepProgress, mean_nll};

fn device() -> Device {
    Device::flex()
}

fn spec() -> ExperimentSpec {
    let mut spec = ExperimentSpec::canary_demo();
    spec.data.canaries = Some(CanarySet {
        format: "my PIN is {d} {d} {d}".into(),
        repetitions: vec![0, 1, 4, 32],
    });
    spec
}

#[test]
fn the_trained_canaries_are_the_forget_set_and_unlearning_makes_their_secrets_less_likely() {
    let spec = spec();
    let mut trainer = Trainer::new(spec.clone(), device()).unwrap();
    while !trainer.is_done() {
        block_on(trainer.step()).unwrap();
    }
    let ck = block_on(trainer.checkpoint()).unwrap();
    let corpus = trainer.corpus().clone();

    let data = forget_set(&spec, &corpus, 64).unwrap();
    // One row per trained canary: the control (0 repetitions) is not in it.
    assert_eq!(data.forget.len(), 3);
    for (row, c) in data.forget.iter().zip(corpus.canaries.iter().skip(1)) {
        let text = corpus.tokenizer.decode(&row[1..row.len() - 1]);
        assert_eq!(text, c.text);
    }
    assert_eq!(data.suffix_start, "my PIN is ".chars().count());
    assert_eq!(data.retain.len(), 64);
    let plain: Vec<&Vec<u32>> = corpus
        .train
        .iter()
        .filter_map(|&i| corpus.get(i))
        .filter(|x| x.kind == InstanceKind::Plain)
        .map(|x| &x.tokens)
        .collect();
    assert!(data.retain.iter().all(|r| plain.contains(&r)));
    assert_eq!(forget_set(&spec, &corpus, 64).unwrap(), data, "seeded");

    let before = measure_blocking(
        &spec,
        &corpus,
        Gpt::from_checkpoint(&ck, &device()).unwrap(),
    )
    .unwrap();
    let nll = |c: &mnemo_core::Checkpoint, rows: &[Vec<u32>]| {
        let gpt = Gpt::from_checkpoint(c, &device()).unwrap();
        let t = mean_nll(&gpt, rows, data.pad, &mut |_, m, x| m.forward(x));
        block_on(t.into_data_async())
            .unwrap()
            .try_to_vec::<f32>()
            .unwrap()[0]
    };
    let show = |r: &ExposureResult| {
        r.canaries
            .iter()
            .map(|c| {
                format!(
                    "x{} {:.2} bits ({:.1})",
                    c.repetitions, c.exposure, c.log_perplexity
                )
            })
            .collect::<Vec<_>>()
            .join(", ")
    };
    eprintln!("before: {}", show(&before));
    let (f0, r0) = (nll(&ck, &data.forget), nll(&ck, &data.retain));
    let mut quiet = |_: StepProgress| ControlFlow::Continue(());
    let settings = MethodSettings {
        ratio: 0.2,
        ..MethodSettings::defaults(Method::BalancedSubnet)
    };
    let (edited, mut run) = block_on(unlearned_run(
        &spec,
        &corpus,
        &ck,
        &settings,
        &device(),
        &mut quiet,
    ))
    .unwrap();
    while !run.is_done() {
        block_on(run.step()).unwrap();
    }
    let after = run.finish().unwrap();
    let (f1, r1) = (nll(&edited, &data.forget), nll(&edited, &data.retain));
    eprintln!(
        "balanced-subnet {}: forget {f0:.3} -> {f1:.3}, retain {r0:.3} -> {r1:.3}; after: {}",
        settings.ratio,
        show(&after)
    );
    let lp = |r: &ExposureResult, reps: u32| {
        r.canaries
            .iter()
            .find(|c| c.repetitions == reps)
            .unwrap()
            .clone()
    };
    assert!(
        f1 - f0 > 2.0 * (r1 - r0).max(0.0),
        "it aims at the canaries"
    );
    for reps in [1, 4, 32] {
        assert!(
            lp(&after, reps).log_perplexity > lp(&before, reps).log_perplexity,
            "x{reps}: the secret is less likely after unlearning"
        );
    }
    // The methods that train are refused by name.
    let trains = MethodSettings::defaults(Method::FinetuneClean);
    let err = block_on(unlearned_run(
        &spec,
        &corpus,
        &ck,
        &trains,
        &device(),
        &mut quiet,
    ))
    .err()
    .unwrap();
    assert!(
        err.to_string().contains("finetune-clean trains the model"),
        "{err}"
    );
}
