#![allow(clippy::unwrap_used)] // tests unwrap: a failure is the test failing
//! Canary exposure (METHODS.md section 7) on real models: a model with known
//! probabilities (every weight zero: the uniform distribution over the vocabulary) gives
//! closed-form log-perplexities, ranks and exposures; a seeded training run ranks the
//! canary seen 32 times above the one seen once; the extrapolation agrees with the exact
//! ranks on a space where both run.

use mnemo_core::backend::Device;
use mnemo_core::spec::exposure::ExposureMethod;
use mnemo_core::spec::{CanarySet, ExperimentSpec, ExposureSpec};
use mnemo_core::train::{Trainer, block_on};
use mnemo_core::{Corpus, Gpt};
use mnemo_measures::exposure::{ExposureError, ExposureRun, measure_blocking};

fn device() -> Device {
    Device::flex()
}

fn small_spec() -> ExperimentSpec {
    let mut spec = ExperimentSpec::canary_demo();
    spec.data.canaries = Some(CanarySet {
        format: "my PIN is {d} {d} {d}".into(),
        repetitions: vec![0, 1, 4, 32],
    });
    spec
}

/// A model of `spec`'s shape with every weight (layer-norm gains included) set to zero:
/// its logits are 0, so every next token has probability 1 / vocab.
fn uniform_model(spec: &ExperimentSpec, corpus: &Corpus) -> Gpt {
    let vocab = corpus.tokenizer.vocab_size();
    let model = Gpt::new(&spec.model, vocab, spec.seed, &device());
    let mut ck = block_on(model.snapshot(0, spec.model)).unwrap();
    for t in &mut ck.tensors {
        t.values.iter_mut().for_each(|v| *v = 0.0);
    }
    Gpt::from_checkpoint(&ck, &device()).unwrap()
}

#[test]
fn a_uniform_model_gives_the_closed_form() {
    let spec = small_spec();
    let corpus = Corpus::build(&spec.data, spec.tokenizer, spec.model.context, spec.seed).unwrap();
    let model = uniform_model(&spec, &corpus);
    let result = measure_blocking(&spec, &corpus, model).unwrap();
    assert_eq!(result.method, ExposureMethod::Exact);
    assert_eq!(result.space, 1000.0);
    assert_eq!(result.scored, 1000);
    assert!((result.max_exposure - 1000f64.log2()).abs() < 1e-12);
    // Scored: the 5 tokens "d d d" after the prefix, each of probability 1 / vocab.
    let v = corpus.tokenizer.vocab_size() as f64;
    let want = 5.0 * v.log2();
    assert_eq!(result.canaries.len(), 4);
    for c in &result.canaries {
        assert!(
            (c.log_perplexity - want).abs() < 1e-3,
            "{} vs {want}",
            c.log_perplexity
        );
        // Every candidate ties with the secret, and ties count against it: the last
        // rank among the 1000 - 3 candidates that are not another canary's secret.
        assert_eq!(c.candidates, 997.0);
        assert_eq!(c.rank, 997.0);
        assert_eq!(c.exposure, 0.0);
        assert!(c.above.len() == 10, "ties are listed above the secret");
    }
    let texts: Vec<&str> = result.canaries.iter().map(|c| c.text.as_str()).collect();
    let trained: Vec<&str> = corpus.canaries.iter().map(|c| c.text.as_str()).collect();
    assert_eq!(texts, trained);
    let csv = result.csv().unwrap();
    let mut lines = csv.lines();
    assert_eq!(
        lines.next(),
        Some("canary,repetitions,rank,candidates,exposure,method")
    );
    assert_eq!(lines.count(), 4);
    assert!(csv.contains(",32,997,997,0.000000,exact"));
}

#[test]
fn training_exposes_the_repeated_canary_and_the_extrapolation_agrees() {
    let spec = small_spec();
    let mut trainer = Trainer::new(spec.clone(), device()).unwrap();
    while !trainer.is_done() {
        block_on(trainer.step()).unwrap();
    }
    let ck = block_on(trainer.checkpoint()).unwrap();
    let corpus = trainer.corpus().clone();
    let exact = measure_blocking(
        &spec,
        &corpus,
        Gpt::from_checkpoint(&ck, &device()).unwrap(),
    )
    .unwrap();
    let by_reps = |r: u32| {
        exact
            .canaries
            .iter()
            .find(|c| c.repetitions == r)
            .unwrap()
            .clone()
    };
    for c in &exact.canaries {
        eprintln!(
            "x{}: {} lp {:.2} bits, rank {}, exposure {:.2}",
            c.repetitions, c.text, c.log_perplexity, c.rank, c.exposure
        );
        assert!(c.exposure >= 0.0 && c.exposure <= exact.max_exposure);
        assert_eq!(c.rank.fract(), 0.0, "exact ranks are whole");
    }
    let (once, often) = (by_reps(1), by_reps(32));
    assert!(
        often.exposure > once.exposure + 3.0,
        "x32 {:.2} vs x1 {:.2}",
        often.exposure,
        once.exposure
    );
    assert_eq!(
        often.rank, 1.0,
        "the canary seen 32 times is the most likely"
    );
    assert!(often.above.is_empty());

    // The extrapolation from 2,000 sampled candidates, on the same model.
    let mut ext_spec = spec.clone();
    ext_spec.exposure = Some(ExposureSpec {
        method: ExposureMethod::Extrapolated,
        samples: 2000,
        ..ExposureSpec::default()
    });
    let ext = measure_blocking(
        &ext_spec,
        &corpus,
        Gpt::from_checkpoint(&ck, &device()).unwrap(),
    )
    .unwrap();
    assert_eq!(ext.method, ExposureMethod::Extrapolated);
    assert_eq!(ext.scored, 2004);
    assert!(ext.fit.is_some());
    for (e, x) in exact.canaries.iter().zip(&ext.canaries) {
        eprintln!(
            "x{}: exact {:.2} bits (rank {}), extrapolated {:.2} bits (rank {:.1})",
            e.repetitions, e.exposure, e.rank, x.exposure, x.rank
        );
        assert_eq!(e.log_perplexity, x.log_perplexity, "the same scores");
        assert!(x.exposure >= 0.0 && x.exposure <= ext.max_exposure + 1e-9);
        // In the body of the distribution (the secret outranked by at least 10% of the
        // candidates) the fit reads the rank well; in the tail it is an approximation
        // (measured: rank 16 of 997 read as 5.6, 1.5 bits off).
        let tol = if e.rank >= 0.1 * e.candidates {
            0.5
        } else {
            2.0
        };
        if e.rank > 1.0 {
            assert!(
                (e.exposure - x.exposure).abs() < tol,
                "x{}: exact {} vs extrapolated {}",
                e.repetitions,
                e.exposure,
                x.exposure
            );
        }
    }
}

#[test]
fn a_model_trained_without_the_canaries_is_refused() {
    let spec = small_spec();
    let mut other = spec.clone();
    other.data.canaries = None;
    let corpus = Corpus::build(
        &other.data,
        other.tokenizer,
        other.model.context,
        other.seed,
    )
    .unwrap();
    let model = Gpt::new(
        &spec.model,
        corpus.tokenizer.vocab_size(),
        spec.seed,
        &device(),
    );
    assert!(matches!(
        ExposureRun::new(&spec, &corpus, model.clone()),
        Err(ExposureError::NotTrainedOn)
    ));
    assert!(matches!(
        ExposureRun::new(&other, &corpus, model),
        Err(ExposureError::NoCanaries)
    ));
}
