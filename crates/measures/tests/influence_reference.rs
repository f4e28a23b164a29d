#![allow(clippy::unwrap_used)] // tests unwrap: a failure is the test failing
//! Mnemo's influence scores against an independent implementation: captum 0.8.0's
//! `TracInCP` (TracIn, TracIn-Last) and plain PyTorch autograd (TracIn-WE, TopK) on the
//! same checkpoints and token ids, in float64 (tests/reference/influence_reference.py;
//! fixtures made by tests/reference/make_influence_fixtures.sh). A tied and an untied
//! model; every method must agree to 1e-4 relative (1e-6 absolute near zero).

use std::collections::HashMap;
use std::path::PathBuf;

use mnemo_core::backend::Device;
use mnemo_core::{Checkpoint, ExperimentSpec};
use mnemo_measures::influence::{Example, InfluenceRun, Method, WeightedCheckpoint, run_blocking};

fn dir(kind: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/fixtures/influence")
        .join(kind)
}

fn rows(path: PathBuf) -> Vec<HashMap<String, String>> {
    let mut r = csv::Reader::from_path(&path).unwrap();
    let header: Vec<String> = r.headers().unwrap().iter().map(String::from).collect();
    r.records()
        .map(|rec| {
            let rec = rec.unwrap();
            header
                .iter()
                .cloned()
                .zip(rec.iter().map(String::from))
                .collect()
        })
        .collect()
}

/// Largest error relative to max(|reference|, 1e-2 * the largest |reference| of the
/// method), and whether every score is within 1e-4 relative or 1e-6 absolute.
fn compare(kind: &str) -> f64 {
    let d = dir(kind);
    let spec =
        ExperimentSpec::from_json(&std::fs::read_to_string(d.join("spec.json")).unwrap()).unwrap();
    let settings = spec.influence.clone().unwrap();
    let mut tokens: HashMap<u32, Vec<u32>> = HashMap::new();
    let mut train: Vec<u32> = Vec::new();
    for r in rows(d.join("instances.csv")) {
        let id: u32 = r["instance"].parse().unwrap();
        tokens.insert(
            id,
            r["tokens"].split(' ').map(|t| t.parse().unwrap()).collect(),
        );
        if r["split"] == "train" {
            train.push(id);
        }
    }
    train.sort_unstable();
    let bos = tokens[&train[0]][0];
    let reference = rows(d.join("reference.csv"));
    let mut tests: Vec<u32> = Vec::new();
    let mut expected: HashMap<(u32, u32, String), f64> = HashMap::new();
    for r in &reference {
        let t: u32 = r["test"].parse().unwrap();
        if !tests.contains(&t) {
            tests.push(t);
        }
        expected.insert(
            (t, r["train"].parse().unwrap(), r["method"].clone()),
            r["score"].parse().unwrap(),
        );
    }
    let cks: Vec<WeightedCheckpoint> = rows(d.join("checkpoints.csv"))
        .iter()
        .map(|r| WeightedCheckpoint {
            checkpoint: Checkpoint::from_safetensors(&std::fs::read(d.join(&r["file"])).unwrap())
                .unwrap(),
            lr: r["learning_rate"].parse().unwrap(),
        })
        .collect();
    assert_eq!(cks.len(), 2);
    let ex = |id: u32| Example {
        id,
        tokens: tokens[&id].clone(),
    };
    let run = InfluenceRun::from_examples(
        settings,
        tests.iter().map(|&t| ex(t)).collect(),
        train.iter().map(|&t| ex(t)).collect(),
        bos,
        cks,
        &Device::flex(),
    )
    .unwrap();
    let result = run_blocking(run, |_| std::ops::ControlFlow::Continue(()))
        .unwrap()
        .unwrap();
    let mut worst = 0.0f64;
    let mut checked = 0;
    for t in &result.tests {
        for m in Method::ALL {
            let scores = &t.method(m).unwrap().scores;
            for (&tr, &got) in result.train.iter().zip(scores) {
                let want = expected[&(t.test, tr, m.key().to_string())];
                let err = (got - want).abs();
                assert!(
                    err <= (1e-4 * want.abs()).max(1e-6),
                    "{kind} {} test {} train {tr}: mnemo {got} vs reference {want}",
                    m.key(),
                    t.test
                );
                if want.abs() > 1e-6 {
                    worst = worst.max(err / want.abs());
                }
                checked += 1;
            }
        }
    }
    assert_eq!(checked, expected.len());
    eprintln!("{kind}: {checked} scores, largest relative error {worst:.2e}");
    worst
}

#[test]
fn scores_match_captum_and_autograd_on_a_tied_model() {
    compare("tied");
}

#[test]
fn scores_match_captum_and_autograd_on_an_untied_model() {
    compare("untied");
}
