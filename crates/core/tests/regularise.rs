#![allow(clippy::unwrap_used)] // tests unwrap: a failure is the test failing
//! The training regularisers (METHODS.md section 5, methods 1-3). Each test would fail if
//! its regulariser did nothing: loss truncation drops exactly the sequences above the
//! window's quantile and they do not reach the gradient; the spectral-norm penalty's
//! power iteration finds the largest singular value and the penalty lowers it; example-
//! tied dropout trains each example's units only and drops the tied ones at test time.
//! Runs are deterministic and resume bit-identically.

use mnemo_core::backend::Device;
use mnemo_core::burn::tensor::{Tensor, TensorData};
use mnemo_core::model::{Gpt, ModelConfig, ids_tensor};
use mnemo_core::regularise::{
    LossWindow, PowerIteration, RegulariserState, TiedUnits, penalised_blocks, truncated_loss,
};
use mnemo_core::spec::regulariser::{ExampleTiedDropout, LossTruncation, SpectralNorm};
use mnemo_core::spec::{DataSource, Decay, Duration, ExperimentSpec, Regulariser, SplitMode};
use mnemo_core::train::{Trainer, batch_tensors, block_on, mean_loss};
use mnemo_core::{Checkpoint, ResumeError, ResumePoint, TrainError};

fn cpu() -> Device {
    Device::flex()
}

fn vec1(t: Tensor<1>) -> Vec<f32> {
    t.into_data().try_into_vec::<f32>().unwrap()
}

/// A small run: the facts demo cut to 12 steps of 4.
fn tiny(reg: Option<Regulariser>) -> ExperimentSpec {
    let mut spec = ExperimentSpec::demo();
    spec.training.duration = Duration::Steps(12);
    spec.training.batch_size = 4;
    spec.training.warmup_steps = 2;
    spec.training.regulariser = reg;
    spec
}

fn run(spec: ExperimentSpec) -> Trainer {
    let mut t = Trainer::new(spec, cpu()).unwrap();
    while block_on(t.step()).unwrap().is_some() {}
    t
}

fn bits(t: &Trainer) -> Vec<u32> {
    t.losses().iter().map(|l| l.1.to_bits()).collect()
}

fn tensor<'a>(ck: &'a Checkpoint, name: &str) -> &'a mnemo_core::NamedTensor {
    ck.tensors.iter().find(|t| t.name == name).unwrap()
}

fn max_diff(a: &Checkpoint, b: &Checkpoint) -> f32 {
    let mut m = 0.0f32;
    for t in &a.tensors {
        for (x, y) in t.values.iter().zip(&tensor(b, &t.name).values) {
            m = m.max((x - y).abs());
        }
    }
    m
}

fn all_regularisers() -> [Regulariser; 3] {
    [
        // While the loss falls fast, a batch's losses are below the recent ones and c = 0.4
        // drops next to nothing; c = 0.8 drops some from the second step on.
        Regulariser::LossTruncation(LossTruncation { c: 0.8, window: 20 }),
        Regulariser::SpectralNorm(SpectralNorm { lambda: 0.5 }),
        Regulariser::ExampleTiedDropout(ExampleTiedDropout::default()),
    ]
}

#[test]
fn specs_without_a_regulariser_read_and_write_as_before() {
    let spec = ExperimentSpec::demo();
    let json = spec.to_json();
    assert!(!json.contains("regulariser"), "absent, not null");
    assert_eq!(ExperimentSpec::from_json(&json).unwrap(), spec);
    let mut with = spec.clone();
    with.training.regulariser = Some(Regulariser::defaults("loss-truncation").unwrap());
    let json = with.to_json();
    assert!(json.contains(r#""method": "loss-truncation""#), "{json}");
    assert_eq!(ExperimentSpec::from_json(&json).unwrap(), with);
    assert_ne!(
        mnemo_core::resume::spec_digest(&with),
        mnemo_core::resume::spec_digest(&spec)
    );
    // Out-of-range settings are refused when the spec is read.
    let bad = json.replace(r#""c": 0.4"#, r#""c": 1.5"#);
    assert!(ExperimentSpec::from_json(&bad).is_err());
}

// ---------------------------------------------------------------- loss truncation

#[test]
fn truncation_drops_exactly_the_sequences_above_the_windows_quantile_in_the_graph() {
    let dev = cpu();
    // Four sequences with per-token losses (padding 0 and unscored): means 1, 3, 2.5, 6.
    let nll = [
        [1.0, 1.0, 1.0, 0.0],
        [2.0, 4.0, 0.0, 0.0],
        [2.0, 3.0, 2.5, 2.5],
        [6.0, 0.0, 0.0, 0.0],
    ];
    let mask = [
        [1.0, 1.0, 1.0, 0.0],
        [1.0, 1.0, 0.0, 0.0],
        [1.0, 1.0, 1.0, 1.0],
        [1.0, 0.0, 0.0, 0.0],
    ];
    let flat = |m: [[f32; 4]; 4]| Tensor::<2>::from_data(TensorData::new(m.concat(), [4, 4]), &dev);
    // Window 1..=5: the 0.6 quantile (c = 0.4) is 1 + 4 * 0.6 = 3.4 (numpy's linear).
    let window = LossWindow::with_values(10, &[5.0, 1.0, 4.0, 2.0, 3.0]);
    let t = window.threshold(0.4).unwrap();
    assert!((t - 3.4).abs() < 1e-6, "{t}");
    let cut = truncated_loss(flat(nll), flat(mask), Some(t));
    assert_eq!(
        vec1(cut.keep),
        vec![1.0, 1.0, 1.0, 0.0],
        "only the mean-6 one"
    );
    assert_eq!(vec1(cut.per_sequence), vec![1.0, 3.0, 2.5, 6.0]);
    // The kept sequences' tokens (3 + 2 + 4 = 9) averaged: (3 + 6 + 10) / 9.
    let obj = vec1(cut.objective)[0];
    assert!((obj - 19.0 / 9.0).abs() < 1e-6, "{obj}");
    assert_eq!(
        window.keep(0.4, &[1.0, 3.0, 2.5, 6.0]),
        vec![true, true, true, false]
    );
    // c = 0.8: threshold 1.8, so the means 3, 2.5 and 6 go.
    let cut = truncated_loss(flat(nll), flat(mask), window.threshold(0.8));
    assert_eq!(vec1(cut.keep), vec![1.0, 0.0, 0.0, 0.0]);
    // No window yet: everything is kept and the objective is the plain mean.
    let cut = truncated_loss(flat(nll), flat(mask), None);
    assert_eq!(vec1(cut.keep), vec![1.0; 4]);
    assert!((vec1(cut.objective)[0] - 25.0 / 10.0).abs() < 1e-6);
}

/// Eight short lines trained in one batch of eight, one step.
fn one_batch_spec(reg: Option<Regulariser>) -> ExperimentSpec {
    let mut spec = ExperimentSpec::demo();
    spec.data.source = DataSource::Text {
        text: "alpha beta gamma\nthe quick brown fox jumps\nzz\nqqq xxx qqq\n\
               lorem ipsum dolor sit amet\n0 1 2 3 4 5 6 7 8 9\nhello world\nmnemo"
            .into(),
        split: SplitMode::Lines,
    };
    spec.data.heldout_fraction = 0.0;
    spec.training.batch_size = 8;
    spec.training.duration = Duration::Epochs(1);
    spec.training.warmup_steps = 0;
    spec.training.decay = Decay::Constant;
    spec.training.regulariser = reg;
    spec
}

#[test]
fn dropped_sequences_do_not_reach_the_gradient_a_truncated_step_is_a_step_on_the_kept_ones() {
    let trunc = Regulariser::LossTruncation(LossTruncation {
        c: 0.4,
        window: 100,
    });
    let spec = one_batch_spec(Some(trunc));
    let fresh = Trainer::new(spec.clone(), cpu()).unwrap();
    let corpus = fresh.corpus().clone();
    assert_eq!(corpus.train.len(), 8);
    // Each sequence's loss under the initial weights, and a window of those losses.
    let losses: Vec<f32> = corpus
        .train
        .iter()
        .map(|&i| {
            block_on(mean_loss(fresh.model(), &corpus, &[i], 1))
                .unwrap()
                .unwrap()
        })
        .collect();
    let window = LossWindow::with_values(100, &losses);
    let threshold = window.threshold(0.4).unwrap();
    let keep = window.keep(0.4, &losses);
    let dropped: std::collections::BTreeSet<u32> = corpus
        .train
        .iter()
        .zip(&keep)
        .filter(|(_, k)| !**k)
        .map(|(&i, _)| i)
        .collect();
    assert_eq!(dropped.len(), 3, "h = 7 * 0.6 = 4.2: the top 3 of 8 go");
    let margin = losses
        .iter()
        .map(|l| (l - threshold).abs())
        .fold(f32::INFINITY, f32::min);
    assert!(margin > 1e-4, "no loss sits on the threshold: {margin}");

    // A: the truncated step, with the window put in through a resume point at step 0.
    let mut point = block_on(fresh.resume_point()).unwrap();
    assert_eq!(
        point.regulariser,
        Some(RegulariserState::LossWindow { losses: vec![] })
    );
    point.regulariser = Some(RegulariserState::LossWindow {
        losses: losses.iter().map(|l| l.to_bits()).collect(),
    });
    let mut a = Trainer::resume(spec.clone(), cpu(), &point).unwrap();
    block_on(a.step()).unwrap().unwrap();
    assert!(a.is_done());
    // The batch's per-sequence losses went into the window after the old ones.
    let w = a.loss_window().unwrap().values();
    assert_eq!(w.len(), 16);
    assert_eq!(&w[..8], losses.as_slice());
    for (&id, l) in a.batch_ids(1).iter().zip(&w[8..]) {
        let pos = corpus.train.iter().position(|&i| i == id).unwrap();
        assert!((l - losses[pos]).abs() < 1e-5, "{l} vs {}", losses[pos]);
    }
    let weights_a = block_on(a.checkpoint()).unwrap();

    // B: no regulariser, one step on the kept sequences only.
    let plain = one_batch_spec(None);
    let mut b =
        Trainer::with_corpus_excluding(plain.clone(), corpus.clone(), cpu(), dropped.clone())
            .unwrap();
    assert_eq!(b.batch_ids(1).len(), 5);
    block_on(b.step()).unwrap().unwrap();
    assert!(b.is_done());
    let weights_b = block_on(b.checkpoint()).unwrap();
    // C: no regulariser, one step on all eight.
    let c = run(plain);
    let weights_c = block_on(c.checkpoint()).unwrap();

    let ab = max_diff(&weights_a, &weights_b);
    let ac = max_diff(&weights_a, &weights_c);
    eprintln!("max |w_truncated - w_kept_only| = {ab:e}, vs all eight: {ac:e}");
    // AdamW's first step moves each weight by lr * g / (|g| + eps): where a
    // gradient is near zero, a rounding difference dg between the masked sum and
    // the sum over five moves the weight by up to lr * dg / eps. Rounding of
    // that kind measured up to 1.1e-5 (0.2% of lr) under load; a step that let a
    // dropped sequence through moves weights by about lr (ac below).
    let lr = spec.training.learning_rate as f32;
    assert!(
        ab < 1e-2 * lr,
        "truncated step = step on the kept ones: {ab} (lr {lr})"
    );
    assert!(ac > 1e-3, "and not the step on all of them: {ac}");
    // The reported loss is the whole batch's, as without truncation.
    assert_eq!(a.losses()[0].1.to_bits(), c.losses()[0].1.to_bits());
}

// ---------------------------------------------------------------- spectral norm

/// The largest singular value of the row-major `rows x cols` block of `t` at
/// `(r0, c0)`, by nalgebra's SVD (in f64).
fn svd_max(t: &mnemo_core::NamedTensor, r0: usize, rows: usize, c0: usize, cols: usize) -> f64 {
    let width = t.shape[1];
    let m = nalgebra::DMatrix::<f64>::from_fn(rows, cols, |i, j| {
        t.values[(r0 + i) * width + c0 + j] as f64
    });
    m.singular_values().max()
}

/// `sigma_max` of every penalised block of a checkpoint, in [`penalised_blocks`] order,
/// cut from the stored tensors by hand.
fn reference_sigmas(ck: &Checkpoint, heads: usize) -> Vec<(String, Vec<f64>)> {
    let mut out = Vec::new();
    for l in 0..ck.config.n_layers {
        let qkv = tensor(ck, &format!("h.{l}.attn.c_attn.weight"));
        let d = qkv.shape[0];
        let hd = d / heads;
        out.push((
            format!("h.{l}.attn.c_attn"),
            (0..3 * heads)
                .map(|j| svd_max(qkv, 0, d, j * hd, hd))
                .collect(),
        ));
        let proj = tensor(ck, &format!("h.{l}.attn.c_proj.weight"));
        out.push((
            format!("h.{l}.attn.c_proj"),
            (0..heads)
                .map(|h| svd_max(proj, h * hd, hd, 0, d))
                .collect(),
        ));
        for name in ["c_fc", "c_proj"] {
            let w = tensor(ck, &format!("h.{l}.mlp.{name}.weight"));
            out.push((
                format!("h.{l}.mlp.{name}"),
                vec![svd_max(w, 0, w.shape[0], 0, w.shape[1])],
            ));
        }
    }
    out
}

#[test]
fn the_power_iteration_finds_each_blocks_largest_singular_value() {
    let cfg = ModelConfig {
        n_layers: 2,
        d_model: 32,
        n_heads: 4,
        context: 16,
        tied_head: false,
        activation: Default::default(),
        layout: Default::default(),
    };
    let dev = cpu();
    let model = Gpt::new(&cfg, 20, 5, &dev);
    let ck = block_on(model.snapshot(0, cfg)).unwrap();
    let want = reference_sigmas(&ck, 4);
    let mut power = PowerIteration::new(&model, 5);
    let first: Vec<Vec<f32>> = power
        .sigmas(&model)
        .into_iter()
        .map(|(_, s)| vec1(s))
        .collect();
    let mut got = Vec::new();
    for _ in 0..300 {
        got = power.sigmas(&model);
    }
    assert_eq!(got.len(), want.len());
    assert_eq!(got.len(), 8, "c_attn, c_proj, c_fc, c_proj per layer");
    let mut total = 0.0f64;
    let mut first_worst = 0.0f64;
    for (((name, s), (want_name, w)), f) in got.into_iter().zip(&want).zip(&first) {
        assert_eq!(&name, want_name);
        let s = vec1(s);
        assert_eq!(s.len(), w.len(), "{name}: one sigma per block");
        for ((&s, &w), &f) in s.iter().zip(w).zip(f) {
            assert!(
                ((s as f64) - w).abs() <= 0.01 * w,
                "{name}: power iteration {s} vs SVD {w}"
            );
            first_worst = first_worst.max((w - f as f64).abs() / w);
            total += w;
        }
    }
    // The penalty is lambda/2 times the sum of them all.
    let penalty = vec1(power.penalty(&model, 0.5))[0] as f64;
    assert!(
        (penalty - 0.25 * total).abs() <= 0.01 * 0.25 * total,
        "{penalty} vs {total}"
    );
    // The first iteration alone is not there yet: the test checks convergence.
    assert!(
        first_worst > 0.01,
        "one iteration is already exact? {first_worst}"
    );
    // The blocks as the penalty sees them are the ones cut by hand above.
    let blocks = penalised_blocks(&model);
    assert_eq!(blocks[0].1.dims(), [12, 32, 8]);
    assert_eq!(blocks[1].1.dims(), [4, 8, 32]);
    assert_eq!(blocks[2].1.dims(), [1, 32, 128]);
    assert_eq!(blocks[3].1.dims(), [1, 128, 32]);
}

#[test]
fn a_large_spectral_penalty_ends_with_smaller_singular_values() {
    let sigmas = |reg| {
        let mut spec = tiny(reg);
        spec.training.duration = Duration::Steps(40);
        let t = run(spec);
        let ck = block_on(t.checkpoint()).unwrap();
        let all: Vec<f64> = reference_sigmas(&ck, 4)
            .into_iter()
            .flat_map(|(_, s)| s)
            .collect();
        (
            all.iter().copied().fold(0.0, f64::max),
            all.iter().sum::<f64>(),
        )
    };
    let (max0, sum0) = sigmas(None);
    let (max1, sum1) = sigmas(Some(Regulariser::SpectralNorm(SpectralNorm {
        lambda: 10.0,
    })));
    eprintln!("sigma_max: max {max0:.4} -> {max1:.4}, sum {sum0:.4} -> {sum1:.4}");
    assert!(max1 < 0.95 * max0, "max sigma {max0} -> {max1}");
    assert!(sum1 < 0.95 * sum0, "sum of sigmas {sum0} -> {sum1}");
}

// ---------------------------------------------------------------- example-tied dropout

#[test]
fn each_example_trains_exactly_its_shared_and_tied_units() {
    let units = TiedUnits::new(&ExampleTiedDropout::default(), 256, 42);
    assert_eq!(units.shared(), 51, "floor(0.2 * 256)");
    assert_eq!(units.tied(), 21, "round(0.1 * 205)");
    let a = units.tied_units(3);
    let b = units.tied_units(4);
    assert_eq!(a.len(), 21);
    assert!(a.windows(2).all(|w| w[0] < w[1]), "distinct, ascending");
    assert!(a.iter().all(|&u| (51..256).contains(&u)));
    assert_ne!(a, b, "examples get their own units");
    assert_eq!(a, units.tied_units(3), "the same at every call");
    assert_ne!(
        a,
        TiedUnits::new(&ExampleTiedDropout::default(), 256, 43).tied_units(3)
    );
    let mask = units.mask(3);
    for (u, &m) in mask.iter().enumerate() {
        let want = u < 51 || a.contains(&u);
        assert_eq!(m, if want { 1.0 } else { 0.0 }, "unit {u}");
    }
    assert_eq!(mask.iter().sum::<f32>(), 72.0);
    assert_eq!(units.shared_mask().iter().sum::<f32>(), 51.0);
}

#[test]
fn a_step_on_one_example_leaves_the_other_units_gradients_at_zero() {
    let spec = tiny(Some(Regulariser::ExampleTiedDropout(
        ExampleTiedDropout::default(),
    )));
    let trainer = Trainer::new(spec, cpu()).unwrap();
    let units = trainer.tied_units().unwrap().clone();
    let model = trainer.model();
    let dev = model.wte.val().device();
    assert!(dev.is_autodiff());
    let id = trainer.corpus().train[0];
    let (inputs, targets, mask, n) = batch_tensors(trainer.corpus(), &[id], &dev);
    let logp = units.token_log_probs(model, &[id], inputs, targets);
    let loss = -(logp * mask).sum() / (n as f64);
    let grads = loss.backward();
    let tied = units.tied_units(id);
    let active = |u: usize| u < units.shared() || tied.contains(&u);
    for block in &model.blocks {
        let g = block.mlp.fc.weight.val().grad(&grads).unwrap();
        let [d, h] = g.dims();
        let g = g.into_data().try_into_vec::<f32>().unwrap();
        let gb = block
            .mlp
            .fc
            .bias
            .as_ref()
            .unwrap()
            .val()
            .grad(&grads)
            .unwrap();
        let gb = gb.into_data().try_into_vec::<f32>().unwrap();
        let mut live = 0;
        for u in 0..h {
            let col_zero = (0..d).all(|r| g[r * h + u] == 0.0) && gb[u] == 0.0;
            if active(u) {
                live += usize::from(!col_zero);
            } else {
                assert!(col_zero, "unit {u} is neither shared nor tied to {id}");
            }
        }
        assert!(live > 60, "the example's own units learn: {live} of 72");
    }
}

#[test]
fn the_test_time_model_zeroes_exactly_the_non_shared_units() {
    let spec = tiny(Some(Regulariser::ExampleTiedDropout(
        ExampleTiedDropout::default(),
    )));
    let mut trainer = Trainer::new(spec, cpu()).unwrap();
    for _ in 0..3 {
        block_on(trainer.step()).unwrap();
    }
    let shared = trainer.tied_units().unwrap().shared();
    let train = block_on(trainer.checkpoint()).unwrap();
    let test = block_on(trainer.test_checkpoint()).unwrap();
    assert_eq!(train.tensors.len(), test.tensors.len());
    for t in &train.tensors {
        let u = tensor(&test, &t.name);
        let is_fc = t.name.contains("mlp.c_fc");
        if !is_fc {
            assert_eq!(t, u, "{} unchanged", t.name);
            continue;
        }
        let h = *t.shape.last().unwrap();
        for (i, (&x, &y)) in t.values.iter().zip(&u.values).enumerate() {
            let unit = i % h;
            if unit < shared {
                assert_eq!(x, y, "{} shared unit {unit}", t.name);
            } else {
                assert_eq!(y, 0.0, "{} unit {unit}", t.name);
            }
        }
        assert!(
            t.values
                .iter()
                .enumerate()
                .any(|(i, &x)| i % h >= shared && x != 0.0)
        );
    }
    // The trainer's own evaluation uses the test-time model.
    let (train_loss, _) = block_on(trainer.train_heldout_loss()).unwrap();
    let corpus = trainer.corpus();
    let test_model = Gpt::from_checkpoint(&test, &cpu()).unwrap();
    let want = block_on(mean_loss(&test_model, corpus, &corpus.train, 4)).unwrap();
    let full = block_on(mean_loss(trainer.model(), corpus, &corpus.train, 4)).unwrap();
    assert!((train_loss.unwrap() - want.unwrap()).abs() < 1e-5);
    assert!((train_loss.unwrap() - full.unwrap()).abs() > 1e-3);
    // Without example-tied dropout the test checkpoint is the checkpoint.
    let mut plain = Trainer::new(tiny(None), cpu()).unwrap();
    block_on(plain.step()).unwrap();
    assert_eq!(
        block_on(plain.test_checkpoint()).unwrap(),
        block_on(plain.checkpoint()).unwrap()
    );
    // Sanity: ids_tensor is the model's own batching (used above through batch_tensors).
    let _ = ids_tensor(&[vec![1, 2]], 2, 0, &cpu());
}

// ---------------------------------------------------------------- all three

#[test]
fn runs_with_each_regulariser_are_deterministic_and_differ_from_plain_runs() {
    let plain = bits(&run(tiny(None)));
    for reg in all_regularisers() {
        let name = reg.name();
        let a = bits(&run(tiny(Some(reg.clone()))));
        let b = bits(&run(tiny(Some(reg))));
        assert_eq!(a, b, "{name}: bit-identical run to run");
        assert_ne!(a, plain, "{name} changes the run");
    }
}

#[test]
fn resumed_runs_with_a_stateful_regulariser_take_the_uninterrupted_runs_steps() {
    for reg in all_regularisers() {
        let name = reg.name();
        let spec = tiny(Some(reg.clone()));
        let whole = run(spec.clone());
        let mut first = Trainer::new(spec.clone(), cpu()).unwrap();
        for _ in 0..5 {
            block_on(first.step()).unwrap();
        }
        let bytes = block_on(first.resume_point()).unwrap().to_bytes().unwrap();
        let point = ResumePoint::from_bytes(&bytes).unwrap();
        assert_eq!(point.regulariser.is_some(), reg.has_state(), "{name}");
        let mut resumed = Trainer::resume(spec.clone(), cpu(), &point).unwrap();
        while block_on(resumed.step()).unwrap().is_some() {}
        assert_eq!(resumed.losses(), whole.losses(), "{name}");
        assert_eq!(
            block_on(resumed.checkpoint()).unwrap(),
            block_on(whole.checkpoint()).unwrap(),
            "{name}"
        );
        if reg.has_state() {
            // Without its state the point is refused, naming why.
            let mut bare = point.clone();
            bare.regulariser = None;
            let err = Trainer::resume(spec.clone(), cpu(), &bare).err().unwrap();
            assert!(
                matches!(&err, TrainError::Resume(ResumeError::Regulariser(m)) if m.contains(name)),
                "{err}"
            );
        }
    }
}

/// Seconds per step with and without each regulariser, the best of three interleaved
/// rounds (not a check: run with
/// `cargo test --release -p mnemo-core --test regularise -- --ignored --nocapture`).
#[test]
#[ignore]
fn step_time_with_each_regulariser() {
    let time = |reg: Option<Regulariser>, d: usize, batch: usize| {
        let mut spec = tiny(reg);
        spec.model.d_model = d;
        spec.training.batch_size = batch;
        spec.training.duration = Duration::Steps(30);
        let mut t = Trainer::new(spec, cpu()).unwrap();
        for _ in 0..5 {
            block_on(t.step()).unwrap();
        }
        let start = std::time::Instant::now();
        while block_on(t.step()).unwrap().is_some() {}
        start.elapsed().as_secs_f64() / 25.0
    };
    let regs = [
        None,
        Regulariser::defaults("loss-truncation"),
        Regulariser::defaults("spectral-norm"),
        Regulariser::defaults("example-tied-dropout"),
    ];
    for (d, batch) in [(64, 8), (128, 32)] {
        let mut best = [f64::INFINITY; 4];
        for _ in 0..3 {
            for (b, reg) in best.iter_mut().zip(&regs) {
                *b = b.min(time(reg.clone(), d, batch));
            }
        }
        eprintln!("d_model {d}, batch {batch}, context 64, 2 layers:");
        for (b, reg) in best.iter().zip(&regs) {
            let name = reg.as_ref().map_or("none", |r| r.name());
            eprintln!("  {name}: {:.2} ms/step, x{:.3}", b * 1e3, b / best[0]);
        }
    }
}
