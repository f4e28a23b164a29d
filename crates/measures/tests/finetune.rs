#![allow(clippy::unwrap_used)] // tests unwrap: a failure is the test failing
//! The fine-tunes on the built-in backdoor model: fine-tuning on the clean versions of
//! the triggered sequences removes the backdoor at a cost in accuracy; fine-tuning on
//! the other clean data visits more examples and costs less; the original model is
//! never changed.

use std::ops::ControlFlow;

use mnemo_core::backend::Device;
use mnemo_core::builtin;
use mnemo_core::corpus::Corpus;
use mnemo_core::train::block_on;
use mnemo_measures::unlearn::{
    Method, MethodSettings, MitigationOptions, StepProgress, UnlearnError, prepare, run_method,
    unlearn,
};

#[test]
fn fine_tuning_on_the_clean_versions_removes_the_backdoor() {
    let b = builtin::get("tinymem-backdoor-2l").unwrap();
    let spec = b.spec().unwrap();
    let ck = b.checkpoint().unwrap();
    let corpus = Corpus::build(&spec.data, spec.tokenizer, spec.model.context, spec.seed).unwrap();
    let device = Device::flex();
    let ctx = block_on(prepare(
        ck.clone(),
        corpus,
        MitigationOptions::default(),
        &spec,
        &device,
    ))
    .unwrap();
    assert_eq!(ctx.before.fraction(), 1.0);
    let clock = || 0.0;
    let mut steps = Vec::new();
    let settings = MethodSettings {
        epochs: 3,
        ..MethodSettings::defaults(Method::FinetuneClean)
    };
    let mut progress = |p: StepProgress| {
        steps.push(p.done);
        ControlFlow::Continue(())
    };
    let clean = block_on(run_method(
        &ctx,
        &settings,
        spec.seed,
        &device,
        &clock,
        &mut progress,
    ))
    .unwrap();
    // 3 epochs over the forget set (the triggered training examples it fires on), in
    // batches of the spec's size (epochs run on without a break, as in training).
    let b = spec.training.batch_size;
    let per_epoch = ctx.forget_ids.len().div_ceil(b);
    assert_eq!(
        steps,
        (1..=(3 * ctx.forget_ids.len()).div_ceil(b)).collect::<Vec<_>>()
    );
    let r = &clean.result;
    assert_eq!(r.settings.label(), "epochs=3 lr=0.001");
    assert!(
        r.memorised_after < 0.5,
        "the backdoor fires on {} of the backdoor test set after fine-tuning on clean copies",
        r.memorised_after
    );
    // It costs accuracy, as the paper finds for fine-tuning (measured: 93.9% -> 66.5%):
    // 3 epochs on 139 sequences of the main task alone.
    assert!(r.accuracy_after < r.accuracy_before, "{r:?}");
    assert_ne!(clean.model.tensors, ck.tensors);
    assert_eq!(ctx.model.tensors, ck.tensors, "the original is untouched");

    // On the clean data without the triggered examples the run visits more examples
    // (measured after 1 epoch, fresh optimiser state: backdoor 0%, accuracy 84.7%).
    let mut n = 0;
    let extra = block_on(run_method(
        &ctx,
        &MethodSettings {
            epochs: 1,
            ..MethodSettings::defaults(Method::FinetuneExtra)
        },
        spec.seed,
        &device,
        &clock,
        &mut |p: StepProgress| {
            n = p.total;
            ControlFlow::Continue(())
        },
    ))
    .unwrap();
    assert!(n > per_epoch, "{n} steps over the plain training examples");
    assert!(
        extra.result.accuracy_after > r.accuracy_after,
        "{:?}",
        extra.result
    );

    // Fine-tunes train: `unlearn`, which only edits weights, says so.
    let e = block_on(unlearn(&ck, &ctx.data, &settings, 0, &device, &mut |_| {
        ControlFlow::Continue(())
    }));
    assert!(matches!(e, Err(UnlearnError::Trains("finetune-clean"))));
}
