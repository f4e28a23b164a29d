#![allow(clippy::unwrap_used)] // tests unwrap: a failure is the test failing
//! Training-data influence: gradient identities that would catch a wrong implementation
//! without any reference (TracIn-WE = the lookup part of TracIn; disjoint texts score 0),
//! a memorised text as its own top proponent, case deletion, rank correlation by hand,
//! and the typed errors of bad settings.

use std::collections::BTreeSet;
use std::ops::ControlFlow;

use mnemo_core::backend::Device;
use mnemo_core::burn::module::Param;
use mnemo_core::burn::nn::{LayerNorm, Linear};
use mnemo_core::burn::tensor::{Gradients, Tensor};
use mnemo_core::model::{ModelConfig, ids_tensor};
use mnemo_core::spec::{
    DataSource, DataSpec, Duration, ExperimentSpec, InfluenceMethod as Method, InfluenceSpec,
    SplitMode,
};
use mnemo_core::train::{block_on, plan, plan_excluding, run_blocking};
use mnemo_core::{Checkpoint, Corpus, Gpt, Trainer};
use mnemo_measures::influence::{
    DeletionRow, Example, InfluenceError, InfluenceRun, Removal, WeightedCheckpoint, agreement,
    check, deletion_result, plan_deletion, run_blocking as run_influence, run_deletion_blocking,
    run_deletion_threads, spearman,
};

const BOS: u32 = 1;

fn cfg(tied: bool) -> ModelConfig {
    ModelConfig {
        n_layers: 1,
        d_model: 32,
        n_heads: 2,
        context: 16,
        tied_head: tied,
        activation: Default::default(),
        layout: Default::default(),
    }
}

/// Two random checkpoints (different seeds) with different learning rates.
fn random_checkpoints(tied: bool, vocab: usize) -> Vec<WeightedCheckpoint> {
    let dev = Device::flex();
    [(3u64, 0.5f64), (4, 0.25)]
        .iter()
        .enumerate()
        .map(|(i, &(seed, lr))| {
            let m = Gpt::new(&cfg(tied), vocab, seed, &dev);
            WeightedCheckpoint {
                checkpoint: block_on(m.snapshot(10 * (i + 1), cfg(tied))).unwrap(),
                lr,
            }
        })
        .collect()
}

fn settings(include_bos: bool, topk: usize) -> InfluenceSpec {
    InfluenceSpec {
        include_bos,
        topk,
        ..InfluenceSpec::default()
    }
}

fn ex(id: u32, tokens: &[u32]) -> Example {
    Example {
        id,
        tokens: tokens.to_vec(),
    }
}

fn run(
    s: InfluenceSpec,
    tests: Vec<Example>,
    train: Vec<Example>,
    cks: Vec<WeightedCheckpoint>,
) -> mnemo_measures::influence::InfluenceResult {
    let r = InfluenceRun::from_examples(s, tests, train, BOS, cks, &Device::flex()).unwrap();
    run_influence(r, |_| ControlFlow::Continue(()))
        .unwrap()
        .unwrap()
}

fn score(r: &mnemo_measures::influence::InfluenceResult, test: usize, m: Method) -> Vec<f64> {
    r.tests[test].method(m).unwrap().scores.clone()
}

fn g2(p: &Param<Tensor<2>>, g: &Gradients) -> Vec<f32> {
    p.val()
        .grad(g)
        .map(|t| t.into_data().try_into_vec::<f32>().unwrap())
        .unwrap_or_default()
}
fn g1(p: &Param<Tensor<1>>, g: &Gradients) -> Vec<f32> {
    p.val()
        .grad(g)
        .map(|t| t.into_data().try_into_vec::<f32>().unwrap())
        .unwrap_or_default()
}
fn lin(l: &Linear, g: &Gradients, out: &mut Vec<f32>) {
    out.extend(g2(&l.weight, g));
    out.extend(g1(l.bias.as_ref().unwrap(), g));
}
fn norm(l: &LayerNorm, g: &Gradients, out: &mut Vec<f32>) {
    out.extend(g1(&l.gamma, g));
    out.extend(g1(l.beta.as_ref().unwrap(), g));
}

/// The plain gradients of a text's mean NLL, written independently of the module: an
/// ordinary forward (embeddings looked up inside the graph) and one backward. Returns
/// (the embedding matrix's gradient, every parameter's gradient).
fn plain_grads(ck: &Checkpoint, tokens: &[u32]) -> (Vec<f32>, Vec<f32>) {
    let dev = Device::flex().autodiff();
    let m = Gpt::from_checkpoint(ck, &dev).unwrap();
    let t = tokens.len() - 1;
    let inp = ids_tensor(&[tokens[..t].to_vec()], t, 0, &dev);
    let tgt = ids_tensor(&[tokens[1..].to_vec()], t, 0, &dev);
    let loss = -m.token_log_probs(inp, tgt).mean();
    let g = loss.backward();
    let wte = g2(&m.wte, &g);
    let mut all = wte.clone();
    all.extend(g2(m.wpe.as_ref().unwrap(), &g));
    for b in &m.blocks {
        norm(&b.ln1, &g, &mut all);
        lin(&b.attn.qkv, &g, &mut all);
        lin(&b.attn.proj, &g, &mut all);
        norm(&b.ln2, &g, &mut all);
        lin(&b.mlp.fc, &g, &mut all);
        lin(&b.mlp.proj, &g, &mut all);
    }
    norm(&m.ln_f, &g, &mut all);
    if let Some(h) = &m.head {
        all.extend(g2(h, &g));
    }
    (wte, all)
}

fn dotf(a: &[f32], b: &[f32]) -> f64 {
    assert_eq!(a.len(), b.len());
    a.iter().zip(b).map(|(&x, &y)| x as f64 * y as f64).sum()
}

fn rel_close(a: f64, b: f64, tol: f64) -> bool {
    (a - b).abs() <= tol * a.abs().max(b.abs()).max(1e-6)
}

#[test]
fn tracin_we_is_the_lookup_part_and_tracin_the_full_gradient() {
    let tests = vec![ex(100, &[BOS, 5, 6, 7, 5, 9, 2]), ex(101, &[BOS, 8, 8, 3])];
    let train = vec![
        ex(0, &[BOS, 5, 7, 7, 11, 2]),
        ex(1, &[BOS, 9, 8, 3, 12, 13, 5]),
        ex(2, &[BOS, 14, 15, 2]),
    ];
    for tied in [false, true] {
        let cks = random_checkpoints(tied, 16);
        let r = run(
            settings(true, 256),
            tests.clone(),
            train.clone(),
            cks.clone(),
        );
        for (i, te) in tests.iter().enumerate() {
            for (j, tr) in train.iter().enumerate() {
                let (mut we, mut full) = (0.0, 0.0);
                for c in &cks {
                    let (wa, fa) = plain_grads(&c.checkpoint, &te.tokens);
                    let (wb, fb) = plain_grads(&c.checkpoint, &tr.tokens);
                    we += c.lr * dotf(&wa, &wb);
                    full += c.lr * dotf(&fa, &fb);
                }
                let got_full = score(&r, i, Method::TracIn)[j];
                assert!(
                    rel_close(got_full, full, 1e-4),
                    "tied {tied}: TracIn {got_full} vs plain gradients {full}"
                );
                assert!(full.abs() > 1e-6, "a real, nonzero score");
                let got_we = score(&r, i, Method::TracInWe)[j];
                if !tied {
                    // Untied: the embedding matrix's gradient is the lookup part only.
                    assert!(
                        rel_close(got_we, we, 1e-4),
                        "TracIn-WE {got_we} vs wte gradients {we}"
                    );
                } else {
                    // Tied: the matrix also carries the head's part, which WE leaves out.
                    assert!(
                        !rel_close(got_we, we, 1e-2),
                        "tied WE must differ: {got_we}"
                    );
                }
                // With every position kept, TopK is TracIn-WE.
                let got_topk = score(&r, i, Method::TracInWeTopK)[j];
                assert!(rel_close(got_topk, got_we, 1e-9));
                // Token attribution sums to TracIn-WE.
                let tok: f64 = r.tests[i]
                    .tokens
                    .iter()
                    .filter(|t| t.train == tr.id)
                    .map(|t| t.score)
                    .sum();
                assert!(rel_close(tok, got_we, 1e-9));
            }
        }
    }
}

#[test]
fn texts_sharing_no_token_have_tracin_we_zero() {
    let tests = vec![ex(100, &[BOS, 5, 6, 7, 6])];
    let train = vec![ex(0, &[BOS, 8, 9, 10, 9, 2]), ex(1, &[BOS, 6, 9, 2])];
    let r = run(
        settings(false, 2),
        tests,
        train,
        random_checkpoints(true, 16),
    );
    assert_eq!(score(&r, 0, Method::TracInWe)[0], 0.0);
    assert_eq!(score(&r, 0, Method::TracInWeTopK)[0], 0.0);
    assert!(score(&r, 0, Method::TracIn)[0].abs() > 0.0);
    // Text 1 shares token 6 only: its single attribution term is the WE score.
    let toks: Vec<_> = r.tests[0].tokens.iter().collect();
    assert_eq!(toks.len(), 1);
    assert_eq!((toks[0].train, toks[0].token), (1, 6));
    assert_eq!(toks[0].score, score(&r, 0, Method::TracInWe)[1]);
    assert!(toks[0].score != 0.0);
    // Including BOS makes every pair share a token.
    let r = run(
        settings(true, 10),
        vec![ex(100, &[BOS, 5, 6, 7, 6])],
        vec![ex(0, &[BOS, 8, 9, 10, 9, 2])],
        random_checkpoints(true, 16),
    );
    assert!(score(&r, 0, Method::TracInWe)[0] != 0.0);
}

#[test]
fn topk_keeps_the_positions_of_largest_gradient_norm() {
    // topk 1 keeps one position per text: a pair's TopK score is then either 0 or one
    // term of TracIn-WE's attribution, never the full sum of several tokens.
    let tests = vec![ex(100, &[BOS, 5, 6, 7, 8, 2])];
    let train = vec![ex(0, &[BOS, 5, 6, 7, 8, 2])];
    let cks = vec![random_checkpoints(false, 16).remove(0)];
    let r = run(
        settings(false, 1),
        tests.clone(),
        train.clone(),
        cks.clone(),
    );
    let topk = score(&r, 0, Method::TracInWeTopK)[0];
    let terms: Vec<f64> = r.tests[0].tokens.iter().map(|t| t.score).collect();
    assert_eq!(terms.len(), 4);
    // Identical texts keep the same position, so the score is that token's term.
    assert!(
        terms.iter().any(|&t| rel_close(t, topk, 1e-12)),
        "{topk} {terms:?}"
    );
    assert!(!rel_close(topk, score(&r, 0, Method::TracInWe)[0], 1e-6));
}

/// A corpus of short lines with one line repeated `copies` times.
fn memo_spec(copies: usize, epochs: usize) -> ExperimentSpec {
    let mut lines: Vec<String> = [
        "the cat sat",
        "a dog ran far",
        "red fox jumps",
        "blue sky high",
        "old man walks",
        "fish swim deep",
        "birds fly south",
        "tea is hot",
        "snow falls soft",
        "rain on roofs",
        "moon glows pale",
        "wind howls on",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    for _ in 0..copies {
        lines.push("zq7 xv9 kj3".into());
    }
    let mut spec = ExperimentSpec::demo();
    spec.seed = 7;
    spec.data = DataSpec {
        source: DataSource::Text {
            text: lines.join("\n"),
            split: SplitMode::Lines,
        },
        heldout_fraction: 0.0,
        canary: None,
        canaries: None,
    };
    spec.model = ModelConfig {
        n_layers: 1,
        d_model: 32,
        n_heads: 2,
        context: 16,
        tied_head: true,
        activation: Default::default(),
        layout: Default::default(),
    };
    spec.training.batch_size = 4;
    spec.training.duration = Duration::Epochs(epochs);
    spec.training.learning_rate = 1e-2;
    spec.training.warmup_steps = 5;
    spec.training.checkpoint_every = 0;
    spec.training.checkpoint_steps = vec![];
    spec.influence = Some(InfluenceSpec {
        tests: vec![12],
        deletion_k: vec![4],
        deletion_tests: 1,
        ..InfluenceSpec::default()
    });
    spec
}

fn train_all(spec: &ExperimentSpec) -> (Corpus, Vec<Checkpoint>) {
    let mut trainer = Trainer::new(spec.clone(), Device::flex()).unwrap();
    let mut cks = Vec::new();
    run_blocking(
        &mut trainer,
        |_| ControlFlow::Continue(()),
        |c| {
            cks.push(c);
            Ok(())
        },
    )
    .unwrap();
    (trainer.corpus().clone(), cks)
}

#[test]
fn a_memorised_text_is_its_own_top_proponent_and_deletion_beats_random() {
    let spec = memo_spec(4, 40);
    let (corpus, cks) = train_all(&spec);
    let copies: Vec<u32> = vec![12, 13, 14, 15];
    let r = InfluenceRun::new(&spec, &corpus, &cks, &Device::flex()).unwrap();
    let res = run_influence(r, |_| ControlFlow::Continue(()))
        .unwrap()
        .unwrap();
    assert_eq!(
        res.checkpoints.len(),
        1,
        "default: the final checkpoint only"
    );
    for m in [
        Method::TracIn,
        Method::TracInWe,
        Method::TracInLast,
        Method::TracInWeTopK,
    ] {
        let t = res.tests[0].method(m).unwrap();
        let top: Vec<u32> = t.proponents.iter().take(4).map(|p| p.train).collect();
        if matches!(m, Method::TracIn | Method::TracInWe) {
            // Copies have identical tokens, hence identical scores: ties go to the
            // smaller id, so the text itself (id 12) is first, its copies next.
            assert_eq!(top, copies, "{m:?}: {:?}", t.proponents);
            assert!(t.proponents[4].score < t.proponents[3].score);
        }
    }
    // The agreement matrix has ones on its diagonal.
    let a = agreement(&res);
    for i in 0..a.methods.len() {
        assert!((a.matrix[i][i].unwrap() - 1.0).abs() < 1e-12);
    }
    // Case deletion: removing the 4 copies (TracIn's top 4) raises the text's loss far
    // more than removing 4 random texts.
    let plan = plan_deletion(&spec, &corpus, &res).unwrap();
    assert_eq!(plan.jobs.len(), 4 + 3);
    let tracin = plan
        .jobs
        .iter()
        .find(|j| j.removal == Removal::Top(Method::TracIn))
        .unwrap();
    assert_eq!(tracin.removed, copies);
    let last = cks.iter().max_by_key(|c| c.step).unwrap();
    let del = run_deletion_blocking(&spec, &corpus, &plan, last, &Device::flex(), |_, _| {
        ControlFlow::Continue(())
    })
    .unwrap();
    let rise = |m: Removal| {
        del.summary
            .iter()
            .find(|s| s.removal == m && s.k == 4)
            .unwrap()
            .clone()
    };
    let top = rise(Removal::Top(Method::TracIn));
    let random = rise(Removal::Random);
    eprintln!(
        "deletion: top {top:?}\nrandom {random:?}\nsteps {}",
        cks.last().unwrap().step
    );
    assert!(
        top.mean_rise > 1.0,
        "a memorised text's loss rises: {top:?}"
    );
    assert!(
        top.mean_rise > 3.0 * random.draw_max.max(0.0) + 0.5,
        "{top:?} vs {random:?}"
    );
    assert_eq!(random.n, 3);
    // The retrains on a pool of three threads: the same rows, in the same order.
    let pooled = run_deletion_threads(&spec, &corpus, &plan, last, &Device::flex(), 3, |_, _| {
        ControlFlow::Continue(())
    })
    .unwrap();
    assert_eq!(pooled, del);
}

#[test]
fn exclusion_keeps_the_order_of_the_remaining_texts() {
    let spec = memo_spec(2, 3);
    let corpus = Corpus::build(&spec.data, spec.tokenizer, spec.model.context, spec.seed).unwrap();
    let (steps, full) = plan(&spec, &corpus);
    let (steps0, same) = plan_excluding(&spec, &corpus, &BTreeSet::new()).unwrap();
    assert_eq!((steps, &full), (steps0, &same));
    let ex: BTreeSet<u32> = [3, 12].into();
    let (s2, cut) = plan_excluding(&spec, &corpus, &ex).unwrap();
    let kept: Vec<u32> = full.iter().copied().filter(|i| !ex.contains(i)).collect();
    assert_eq!(cut, kept, "same order, removed texts skipped");
    assert_eq!(s2, (3 * (corpus.train.len() - 2)).div_ceil(4));
    let all: BTreeSet<u32> = corpus.train.iter().copied().collect();
    assert!(plan_excluding(&spec, &corpus, &all).is_err());
    let t =
        Trainer::with_corpus_excluding(spec.clone(), corpus.clone(), Device::flex(), ex).unwrap();
    assert!(
        t.order().is_empty() && t.total_steps() == s2,
        "a fresh trainer with the shortened schedule"
    );
    let lrs = Trainer::new(spec, Device::flex()).unwrap().checkpoint_lrs();
    assert_eq!(lrs.first().map(|x| x.0), Some(0));
    assert!(lrs.iter().all(|&(_, lr)| lr > 0.0));
}

#[test]
fn spearman_matches_a_hand_computed_case() {
    // x ranks 1 2 3 4 5, y ranks 2 1 4 3 5: d^2 = 1+1+1+1+0 = 4,
    // rho = 1 - 6*4 / (5*24) = 0.8.
    let r = spearman(&[1.0, 2.0, 3.0, 4.0, 5.0], &[20.0, 10.0, 40.0, 30.0, 50.0]).unwrap();
    assert!((r - 0.8).abs() < 1e-12, "{r}");
    // Ties share the mean rank: y ranks 1.5 1.5 3; x ranks 1 2 3.
    // Pearson of (1,2,3) and (1.5,1.5,3): cov = 0.75/... by hand = 0.8660254.
    let r = spearman(&[1.0, 2.0, 3.0], &[7.0, 7.0, 9.0]).unwrap();
    assert!((r - 0.75f64.sqrt()).abs() < 1e-12, "{r}");
    assert_eq!(spearman(&[1.0, 1.0], &[1.0, 2.0]), None);
    assert_eq!(spearman(&[1.0], &[1.0]), None);
    let r = spearman(&[3.0, 2.0, 1.0], &[1.0, 2.0, 3.0]).unwrap();
    assert!((r + 1.0).abs() < 1e-12);
}

#[test]
fn deletion_summary_by_hand() {
    let row = |removal, k, draw, test, after: f64| DeletionRow {
        removal,
        k,
        draw,
        test,
        loss_before: 1.0,
        loss_after: after,
    };
    let m = Removal::Top(Method::TracInWe);
    let res = deletion_result(vec![
        row(m, 1, 0, 0, 2.0),
        row(m, 1, 0, 1, 4.0),
        row(Removal::Random, 1, 0, 0, 1.5),
        row(Removal::Random, 1, 0, 1, 1.5),
        row(Removal::Random, 1, 1, 0, 1.0),
        row(Removal::Random, 1, 1, 1, 2.0),
    ]);
    let s = &res.summary[0];
    assert_eq!((s.removal, s.k, s.n), (m, 1, 2));
    assert!((s.mean_rise - 2.0).abs() < 1e-12);
    assert!((s.sd_rise - 2f64.sqrt()).abs() < 1e-12);
    let r = &res.summary[1];
    assert!((r.mean_rise - 0.5).abs() < 1e-12);
    // Per-draw means: draw 0 (0.5 + 0.5) / 2, draw 1 (0 + 1) / 2: both 0.5.
    assert!((r.draw_min - 0.5).abs() < 1e-12 && (r.draw_max - 0.5).abs() < 1e-12);
}

#[test]
fn bad_settings_are_typed_errors() {
    let mut spec = memo_spec(2, 2);
    let corpus = Corpus::build(&spec.data, spec.tokenizer, spec.model.context, spec.seed).unwrap();
    assert!(check(&spec, &corpus).is_ok());
    spec.influence.as_mut().unwrap().tests = vec![999];
    assert!(matches!(
        check(&spec, &corpus),
        Err(InfluenceError::UnknownTest { id: 999, .. })
    ));
    spec.influence.as_mut().unwrap().tests = vec![0];
    spec.influence.as_mut().unwrap().deletion_k = vec![14];
    assert!(matches!(
        check(&spec, &corpus),
        Err(InfluenceError::KTooLarge { k: 14, n: 14 })
    ));
    spec.influence.as_mut().unwrap().deletion_k = vec![1];
    spec.influence.as_mut().unwrap().checkpoints = vec![100_000];
    assert!(matches!(
        check(&spec, &corpus),
        Err(InfluenceError::CheckpointPastEnd { .. })
    ));
    spec.influence.as_mut().unwrap().checkpoints = vec![];
    spec.influence.as_mut().unwrap().tests = vec![];
    assert!(matches!(
        check(&spec, &corpus),
        Err(InfluenceError::NoTests)
    ));
    spec.influence.as_mut().unwrap().tests = vec![0];
    spec.influence.as_mut().unwrap().methods = vec![];
    assert!(matches!(
        check(&spec, &corpus),
        Err(InfluenceError::Spec(_))
    ));
    assert!(matches!(
        InfluenceRun::from_examples(
            InfluenceSpec::default(),
            vec![ex(0, &[BOS, 5])],
            vec![],
            BOS,
            vec![],
            &Device::flex()
        ),
        Err(InfluenceError::NoCheckpoints)
    ));
    // Old specs without the section keep decoding, and the demo round-trips.
    let demo = ExperimentSpec::influence_demo();
    assert_eq!(ExperimentSpec::from_json(&demo.to_json()).unwrap(), demo);
    assert!(!ExperimentSpec::demo().to_json().contains("influence"));
    let mut v: serde_json::Value = serde_json::to_value(ExperimentSpec::demo()).unwrap();
    v["influence"] = serde_json::json!({ "topk": 3, "surprise": 1 });
    assert!(ExperimentSpec::from_json(&v.to_string()).is_err());
    v["influence"] = serde_json::json!({ "topk": 3, "methods": ["tracin_we"] });
    let back = ExperimentSpec::from_json(&v.to_string()).unwrap();
    assert_eq!(back.influence.unwrap().methods, vec![Method::TracInWe]);
}
