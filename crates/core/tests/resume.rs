#![allow(clippy::unwrap_used)] // tests unwrap: a failure is the test failing
//! Resume points: a run stopped after some steps and resumed from its resume point (via
//! bytes, as the browser stores it) takes exactly the steps the uninterrupted run takes.

use mnemo_core::backend::Device;
use mnemo_core::spec::{Duration, ExperimentSpec};
use mnemo_core::train::{Trainer, block_on};
use mnemo_core::{ResumeError, ResumePoint, TrainError};

fn spec() -> ExperimentSpec {
    let mut spec = ExperimentSpec::demo();
    spec.training.duration = Duration::Steps(12);
    spec.training.batch_size = 4;
    spec.training.warmup_steps = 3;
    spec
}

fn run_to_end(t: &mut Trainer) {
    while block_on(t.step()).unwrap().is_some() {}
}

#[test]
fn a_resumed_run_takes_exactly_the_uninterrupted_runs_steps() {
    let mut whole = Trainer::new(spec(), Device::flex()).unwrap();
    run_to_end(&mut whole);

    let mut first = Trainer::new(spec(), Device::flex()).unwrap();
    for _ in 0..5 {
        block_on(first.step()).unwrap();
    }
    let bytes = block_on(first.resume_point()).unwrap().to_bytes().unwrap();
    drop(first);
    let point = ResumePoint::from_bytes(&bytes).unwrap();
    assert_eq!(point.step, 5);
    let mut resumed = Trainer::resume(spec(), Device::flex(), &point).unwrap();
    assert_eq!(resumed.steps_done(), 5);
    run_to_end(&mut resumed);

    // Bit-identical: same batches, same learning rates, same AdamW moments.
    assert_eq!(resumed.losses(), whole.losses());
    assert_eq!(resumed.tokens_seen(), whole.tokens_seen());
    let (a, b) = (
        block_on(resumed.checkpoint()).unwrap(),
        block_on(whole.checkpoint()).unwrap(),
    );
    assert_eq!(a, b);
}

#[test]
fn a_fresh_optimiser_would_not_reproduce_the_run() {
    // The test above would pass by accident if AdamW's state did not matter here: show
    // that resuming with the weights alone (fresh moments) gives other losses.
    let mut whole = Trainer::new(spec(), Device::flex()).unwrap();
    run_to_end(&mut whole);
    let mut first = Trainer::new(spec(), Device::flex()).unwrap();
    for _ in 0..5 {
        block_on(first.step()).unwrap();
    }
    let mut point = block_on(first.resume_point()).unwrap();
    let mut fresh = Trainer::new(spec(), Device::flex()).unwrap();
    point.optimiser = block_on(fresh.resume_point()).unwrap().optimiser;
    let mut resumed = Trainer::resume(spec(), Device::flex(), &point).unwrap();
    run_to_end(&mut resumed);
    assert_eq!(resumed.losses()[..5], whole.losses()[..5]);
    assert_ne!(resumed.losses()[5..], whole.losses()[5..]);
    let _ = block_on(fresh.step());
}

#[test]
fn a_resume_point_of_another_experiment_or_damaged_bytes_is_refused() {
    let mut t = Trainer::new(spec(), Device::flex()).unwrap();
    block_on(t.step()).unwrap();
    let point = block_on(t.resume_point()).unwrap();
    let mut other = spec();
    other.seed += 1;
    assert!(matches!(
        Trainer::resume(other, Device::flex(), &point),
        Err(TrainError::Resume(ResumeError::OtherSpec))
    ));
    let bytes = point.to_bytes().unwrap();
    for cut in [0, 5, 20, bytes.len() / 2, bytes.len() - 1] {
        assert!(
            ResumePoint::from_bytes(&bytes[..cut]).is_err(),
            "cut at {cut}"
        );
    }
    let mut flipped = bytes.clone();
    flipped[3] ^= 0xff;
    assert!(matches!(
        ResumePoint::from_bytes(&flipped),
        Err(ResumeError::Format(_))
    ));
}

#[test]
fn damaged_resume_points_never_panic() {
    use rand::{Rng, SeedableRng};
    let mut t = Trainer::new(spec(), Device::flex()).unwrap();
    block_on(t.step()).unwrap();
    let bytes = block_on(t.resume_point()).unwrap().to_bytes().unwrap();
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(7);
    let (mut ok, mut refused) = (0, 0);
    for _ in 0..2000 {
        let mut b = bytes.clone();
        for _ in 0..rng.random_range(1..8) {
            let i = rng.random_range(0..b.len());
            b[i] = rng.random();
        }
        if rng.random_bool(0.2) {
            b.truncate(rng.random_range(0..b.len()));
        }
        match ResumePoint::from_bytes(&b) {
            Ok(_) => ok += 1,
            Err(_) => refused += 1,
        }
    }
    // Most damage lands in tensor values (still a readable point); some must be refused.
    assert!(refused > 0 && ok > 0, "ok {ok}, refused {refused}");
}

#[test]
fn progress_after_a_resume_counts_from_the_resumption() {
    use mnemo_core::train::Progress;
    // 50 steps in 10 s since resuming at step 100 of 200: 0.2 s/step, 50 steps left.
    let p = Progress::resumed(100, 150, 200, 1.0, 5000, 10.0);
    assert!((p.eta_s - 10.0).abs() < 1e-12, "{p:?}");
    assert!((p.tokens_per_s - 500.0).abs() < 1e-12);
    // Without a resumption it is Progress::new.
    assert_eq!(
        Progress::resumed(0, 150, 200, 1.0, 5000, 10.0),
        Progress::new(150, 200, 1.0, 5000, 10.0)
    );
}

#[test]
fn a_fine_tune_from_a_resume_point_continues_the_optimiser() {
    let mut first = Trainer::new(spec(), Device::flex()).unwrap();
    for _ in 0..5 {
        block_on(first.step()).unwrap();
    }
    let point = block_on(first.resume_point()).unwrap();
    // Another run (other length and rate) starting from those weights.
    let mut other = spec();
    other.training.duration = Duration::Steps(3);
    other.training.learning_rate *= 0.5;
    let mut cont = Trainer::new(other.clone(), Device::flex()).unwrap();
    cont.start_from(&point.weights, Some(&point)).unwrap();
    assert_eq!(
        block_on(cont.checkpoint()).unwrap().tensors,
        point.weights.tensors
    );
    let mut again = Trainer::new(other.clone(), Device::flex()).unwrap();
    again.start_from(&point.weights, Some(&point)).unwrap();
    let mut fresh = Trainer::new(other, Device::flex()).unwrap();
    fresh.start_from(&point.weights, None).unwrap();
    run_to_end(&mut cont);
    run_to_end(&mut again);
    run_to_end(&mut fresh);
    assert_eq!(cont.losses(), again.losses());
    assert_eq!(
        cont.losses()[0],
        fresh.losses()[0],
        "the same weights, the same batch"
    );
    assert_ne!(
        cont.losses()[1..],
        fresh.losses()[1..],
        "AdamW's moments change the steps"
    );
    // A resume point of other weights is refused.
    let mut later = point.clone();
    block_on(first.step()).unwrap();
    later.weights = block_on(first.checkpoint()).unwrap();
    let mut t = Trainer::new(spec(), Device::flex()).unwrap();
    assert!(t.start_from(&point.weights, Some(&later)).is_err());
}
