#![allow(clippy::unwrap_used)] // tests unwrap: a failure is the test failing
//! Memorisation profiles from real training runs of the engine.

use mnemo_core::backend::Device;
use mnemo_core::spec::{ExperimentSpec, ProfileSpec};
use mnemo_core::train::{Trainer, block_on};
use mnemo_measures::profile::{build_panel, cohorts_from_order, estimate_profile, plan_panel};

#[test]
fn cohorts_are_the_first_checkpoint_at_or_after_first_training() {
    let order = [
        (1, 10),
        (1, 11),
        (2, 12),
        (3, 10),
        (5, 13),
        (6, 14),
        (7, 15),
    ];
    let steps = [0, 3, 6];
    let c = cohorts_from_order(&order, &steps);
    assert_eq!(c[&10], 1, "first trained at step 1 (again at 3): cohort 1");
    assert_eq!(c[&11], 1);
    assert_eq!(c[&12], 1);
    assert_eq!(c[&13], 2, "step 5 lands before checkpoint 2 (step 6)");
    assert_eq!(c[&14], 2, "step 6 is in checkpoint 2 itself");
    assert!(
        !c.contains_key(&15),
        "trained after the last checkpoint: no cohort"
    );
}

#[test]
fn the_profile_demo_shows_memorisation_after_training_and_none_before() {
    let spec = ExperimentSpec::profile_demo();
    let settings: ProfileSpec = spec.profile.clone().unwrap();
    let device = Device::flex();
    let mut trainer = Trainer::new(spec.clone(), device.clone()).unwrap();
    let mut checkpoints = Vec::new();
    loop {
        if trainer.checkpoint_due() {
            checkpoints.push(block_on(trainer.checkpoint()).unwrap());
        }
        if block_on(trainer.step()).unwrap().is_none() {
            break;
        }
    }
    let steps: Vec<usize> = checkpoints.iter().map(|c| c.step).collect();
    assert_eq!(steps, (0..=8).map(|k| k * 24).collect::<Vec<_>>());
    let plan = plan_panel(
        trainer.corpus(),
        &trainer.order(),
        &steps,
        &settings,
        spec.seed,
    )
    .unwrap();
    assert_eq!(plan.ids.len(), 8 * 40 + 80);
    // Held-out instances are never in the order; every cohort has its 40.
    let order = trainer.order();
    for (id, cohort) in plan.ids.iter().zip(&plan.cohorts) {
        let trained = order.iter().any(|(_, i)| i == id);
        assert_eq!(trained, cohort.is_some());
    }
    let mut calls = 0;
    let panel = block_on(build_panel(
        &plan,
        &checkpoints,
        trainer.corpus(),
        settings.outcome,
        &device,
        |_, _| calls += 1,
    ))
    .unwrap();
    assert_eq!(calls, 9);
    assert_eq!(panel.checkpoints, 9);
    let result = estimate_profile(&panel, &settings, spec.seed).unwrap();
    // Training on an instance makes it better predicted right away (instantaneous
    // memorisation), clearly above zero on average ...
    let inst = result.event.iter().find(|a| a.key == 0).unwrap();
    assert!(
        inst.memorisation > 0.04,
        "instantaneous {}",
        inst.memorisation
    );
    assert!(inst.significant, "its band excludes zero");
    // ... while before training (placebo, e < 0) there is nothing to see.
    for a in result.event.iter().filter(|a| a.key < 0) {
        assert!(
            a.memorisation.abs() < 0.03,
            "placebo e={} {}",
            a.key,
            a.memorisation
        );
    }
    let placebo_significant = result
        .cells
        .iter()
        .filter(|c| c.checkpoint < c.cohort && c.significant)
        .count();
    assert!(
        placebo_significant <= 2,
        "{placebo_significant} significant placebo cells"
    );
    // Memorisation fades but persists: smaller later, still positive on average.
    let later = result.event.iter().find(|a| a.key == 3).unwrap();
    assert!(later.memorisation < inst.memorisation);
    assert!(later.memorisation > 0.0);
}
