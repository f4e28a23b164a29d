#![allow(clippy::unwrap_used)] // tests unwrap: a failure is the test failing
//! Counterfactual memorisation: the arithmetic on hand-computed cases, the membership
//! bookkeeping, and a real ensemble of the engine's models.

use mnemo_core::Corpus;
use mnemo_core::backend::Device;
use mnemo_core::spec::{CounterfactualSpec, ExperimentSpec};
use mnemo_measures::counterfactual::{
    EnsemblePlan, MemberScores, contrast, counterfactual_result, counterfactual_result_of,
    plan_ensemble, run_ensemble_blocking, run_ensemble_threads,
};

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() < 1e-12
}

fn demo_corpus(spec: &ExperimentSpec) -> Corpus {
    Corpus::build(&spec.data, spec.tokenizer, spec.model.context, spec.seed).unwrap()
}

#[test]
fn contrast_matches_hand_computed_values() {
    // Models 0 and 2 trained on x: in-mean (0.9 + 0.7) / 2, out-mean 0.2.
    let c = contrast(&[true, false, true], &[0.9, 0.2, 0.7]);
    assert!(close(c.in_mean.unwrap(), 0.8));
    assert!(close(c.out_mean.unwrap(), 0.2));
    assert!(close(c.diff.unwrap(), 0.6));
    assert_eq!((c.n_in, c.n_out), (2, 1));
    assert_eq!(c.se, None, "one model without x: no variance on that side");

    // Four models, two per side: Welch SE by hand.
    // in {0.9, 0.5}: mean 0.7, s^2 = 0.08; out {0.3, 0.1}: mean 0.2, s^2 = 0.02.
    let c = contrast(&[true, false, true, false], &[0.9, 0.3, 0.5, 0.1]);
    assert!(close(c.diff.unwrap(), 0.5));
    assert!(close(c.se.unwrap(), (0.08f64 / 2.0 + 0.02 / 2.0).sqrt()));

    // Every model trained on it: mem is undefined, not NaN.
    let c = contrast(&[true, true, true], &[0.9, 0.8, 0.7]);
    assert_eq!((c.diff, c.out_mean, c.se), (None, None, None));
    assert!(close(c.in_mean.unwrap(), 0.8));
    // No model trained on it.
    let c = contrast(&[false, false], &[0.1, 0.2]);
    assert_eq!((c.diff, c.in_mean, c.n_in), (None, None, 0));
}

/// A 3-model toy ensemble over 3 units and one probe, scored by hand.
fn toy_plan() -> EnsemblePlan {
    EnsemblePlan {
        units: vec![vec![0], vec![1, 2], vec![3]],
        membership: vec![
            vec![true, false, true],
            vec![false, true, true],
            vec![true, true, true],
        ],
        seeds: vec![1, 2, 3],
        probes: vec![4],
        settings: CounterfactualSpec {
            models: 3,
            ..CounterfactualSpec::default()
        },
    }
}

#[test]
fn result_keeps_the_books_of_a_three_model_toy() {
    let spec = ExperimentSpec::demo();
    let corpus = demo_corpus(&spec);
    let plan = toy_plan();
    let scores = vec![
        MemberScores {
            units: vec![0.9, 0.4, 0.8],
            probes: vec![0.50],
        },
        MemberScores {
            units: vec![0.3, 0.7, 0.6],
            probes: vec![0.20],
        },
        MemberScores {
            units: vec![0.7, 0.9, 0.7],
            probes: vec![0.41],
        },
    ];
    let r = counterfactual_result(&plan, &corpus, &scores);
    assert_eq!((r.models, r.planned), (3, 3));
    // Unit 0: in models 0 and 2 -> (0.9 + 0.7) / 2 = 0.8; out model 1 -> 0.3.
    let m0 = &r.instances[0].mem;
    assert!(close(m0.diff.unwrap(), 0.5));
    assert_eq!((m0.n_in, m0.n_out), (2, 1));
    // Unit 1 (two copies, ids 1 and 2): in models 1 and 2 -> 0.8; out model 0 -> 0.4.
    assert_eq!((r.instances[1].instance, r.instances[1].copies), (1, 2));
    assert!(close(r.instances[1].mem.diff.unwrap(), 0.4));
    // Unit 2: every model trained on it -> undefined.
    assert_eq!(r.instances[2].mem.diff, None);
    assert_eq!(r.defined(), 2);
    assert_eq!(r.ranked(), vec![0, 1, 2], "undefined ranks last");
    // Influence of unit 0 on the probe: in (0.50 + 0.41) / 2 = 0.455, out 0.20.
    let infl = &r.influence[0];
    assert_eq!(infl.probe, 4);
    assert_eq!(infl.text, corpus.instances[4].text);
    assert!(close(infl.by_unit[0].diff.unwrap(), 0.255));
    // Of unit 1 on the probe: in (0.20 + 0.41) / 2 = 0.305, out 0.50.
    assert!(close(infl.by_unit[1].diff.unwrap(), -0.195));
    assert_eq!(infl.by_unit[2].diff, None);

    // A cancelled ensemble: only the first two models count.
    let r = counterfactual_result(&plan, &corpus, &scores[..2]);
    assert_eq!((r.models, r.planned), (2, 3));
    assert!(close(r.instances[0].mem.diff.unwrap(), 0.6));
    assert_eq!(r.membership.len(), 2);

    // A pool finishes members out of order: the result is the in-order one.
    let shuffled: Vec<(usize, MemberScores)> =
        [2, 0, 1].iter().map(|&j| (j, scores[j].clone())).collect();
    assert_eq!(
        counterfactual_result_of(&plan, &corpus, &shuffled),
        counterfactual_result(&plan, &corpus, &scores)
    );
    // A Cancel can leave a gap: models 0 and 2 done. Unit 0 is in both -> undefined;
    // unit 1 is in model 2 (0.9) and out of model 0 (0.4) -> 0.5.
    let gapped = vec![(2, scores[2].clone()), (0, scores[0].clone())];
    let r = counterfactual_result_of(&plan, &corpus, &gapped);
    assert_eq!((r.models, r.planned), (2, 3));
    assert_eq!(
        r.membership,
        vec![plan.membership[0].clone(), plan.membership[2].clone()]
    );
    assert_eq!(r.instances[0].mem.diff, None);
    assert!(close(r.instances[1].mem.diff.unwrap(), 0.5));
    assert_eq!(
        r.scores,
        vec![scores[0].units.clone(), scores[2].units.clone()]
    );
}

#[test]
fn each_model_trains_on_exactly_its_subset() {
    let spec = ExperimentSpec::counterfactual_demo();
    let corpus = demo_corpus(&spec);
    let settings = CounterfactualSpec {
        models: 12,
        fraction: 0.3,
        ..CounterfactualSpec::default()
    };
    let plan = plan_ensemble(&corpus, &settings, 7).unwrap();
    // 48 unique facts plus the canary's 8 copies as one unit.
    assert_eq!(plan.units.len(), 49);
    let canary = plan.units.iter().find(|u| u.len() == 8).unwrap();
    assert_eq!(canary, &corpus.canary.as_ref().unwrap().ids);
    let expected = (0.3f64 * 49.0).round() as usize;
    assert_eq!(plan.models(), 12);
    assert_eq!(plan.probes, corpus.heldout[..5].to_vec());
    for j in 0..plan.models() {
        let member = &plan.membership[j];
        assert_eq!(member.iter().filter(|m| **m).count(), expected);
        let c = plan.member_corpus(j, &corpus);
        let mut want: Vec<u32> = plan
            .units
            .iter()
            .zip(member)
            .filter(|(_, m)| **m)
            .flat_map(|(u, _)| u.clone())
            .collect();
        want.sort_unstable();
        assert_eq!(c.train, want, "model {j} trains on its units, every copy");
        assert!(c.train.iter().all(|id| !corpus.heldout.contains(id)));
        assert_eq!(c.heldout, corpus.heldout);
        let s = plan.member_spec(j, &spec);
        assert_eq!(s.seed, plan.seeds[j]);
        assert_eq!(s.training.checkpoint_every, 0);
    }
    // Subsets differ between models and are reproducible from the seed.
    assert_ne!(plan.membership[0], plan.membership[1]);
    assert_eq!(plan, plan_ensemble(&corpus, &settings, 7).unwrap());
    assert_ne!(
        plan.membership,
        plan_ensemble(&corpus, &settings, 8).unwrap().membership
    );
    // Bad probes are errors naming the id.
    let bad = CounterfactualSpec {
        influence_on: vec![10_000],
        ..settings
    };
    let err = plan_ensemble(&corpus, &bad, 7).unwrap_err().to_string();
    assert!(err.contains("10000"), "{err}");
}

#[test]
fn a_text_repeated_many_times_is_memorised_far_more_than_unique_ones() {
    let mut spec = ExperimentSpec::counterfactual_demo();
    spec.counterfactual = Some(CounterfactualSpec {
        models: 8,
        ..CounterfactualSpec::default()
    });
    let corpus = demo_corpus(&spec);
    let plan = plan_ensemble(&corpus, spec.counterfactual.as_ref().unwrap(), spec.seed).unwrap();
    let result = run_ensemble_blocking(&spec, &corpus, &plan, &Device::flex(), |_, _| {
        std::ops::ControlFlow::Continue(())
    })
    .unwrap();
    assert_eq!(result.models, 8);
    let canary = result.instances.iter().find(|i| i.copies == 8).unwrap();
    let mut unique: Vec<f64> = result
        .instances
        .iter()
        .filter(|i| i.copies == 1)
        .filter_map(|i| i.mem.diff)
        .collect();
    unique.sort_by(f64::total_cmp);
    let canary_mem = canary.mem.diff.unwrap();
    let max_unique = *unique.last().unwrap();
    let median = unique[unique.len() / 2];
    eprintln!("canary mem {canary_mem:.3}; unique max {max_unique:.3}, median {median:.3}");
    assert_eq!(
        result.ranked()[0],
        result.instances.iter().position(|i| i.copies == 8).unwrap()
    );
    assert!(canary_mem > 0.4, "canary mem {canary_mem}");
    assert!(
        canary_mem > 3.0 * max_unique,
        "{canary_mem} vs {max_unique}"
    );
    // Unique facts are still memorised a little: trained-on beats left-out.
    assert!(median > 0.0, "median unique mem {median}");
    // The canary's digits are learnt only when it is in: out-of-subset accuracy is low.
    assert!(canary.mem.out_mean.unwrap() < 0.5);
    // Stopping after three models keeps them.
    let stopped = run_ensemble_blocking(&spec, &corpus, &plan, &Device::flex(), |j, _| {
        if j == 3 {
            std::ops::ControlFlow::Break(())
        } else {
            std::ops::ControlFlow::Continue(())
        }
    })
    .unwrap();
    assert_eq!((stopped.models, stopped.planned), (3, 8));
    assert_eq!(
        stopped.scores[..],
        result.scores[..3],
        "members are deterministic"
    );
    // Three threads, members finishing in any order: the same result, bit for bit.
    let pooled = run_ensemble_threads(&spec, &corpus, &plan, &Device::flex(), 3, |_, _| {
        std::ops::ControlFlow::Continue(())
    })
    .unwrap();
    assert_eq!(pooled, result);
}
