#![allow(clippy::unwrap_used)] // tests unwrap: a failure is the test failing
//! Engine tests that can fail: each asserts numbers that would be wrong if the model,
//! the trainer or the bookkeeping were wrong. Run on the CPU (flex) backend.

use mnemo_core::backend::Device;
use mnemo_core::model::{Gpt, ModelConfig, ids_tensor};
use mnemo_core::spec::{DataSource, Decay, Duration, ExperimentSpec, SplitMode};
use mnemo_core::train::{Trainer, block_on, plan};
use mnemo_core::{Checkpoint, Corpus, TokenizerKind};

fn cpu() -> Device {
    Device::flex()
}

fn small_config() -> ModelConfig {
    ModelConfig {
        n_layers: 2,
        d_model: 32,
        n_heads: 4,
        context: 32,
        tied_head: false,
        activation: Default::default(),
        layout: Default::default(),
    }
}

fn read(t: mnemo_core::burn::tensor::Tensor<2>) -> Vec<f32> {
    t.into_data().try_into_vec::<f32>().expect("f32 data")
}

#[test]
fn causal_mask_later_tokens_never_change_earlier_log_probs() {
    let dev = cpu();
    let model = Gpt::new(&small_config(), 20, 3, &dev);
    let a: Vec<u32> = vec![1, 5, 7, 2, 9, 4, 4, 8, 3, 0];
    let mut b = a.clone();
    // Change the last three inputs; targets are the same sequence shifted.
    b[7] = 11;
    b[8] = 12;
    b[9] = 13;
    let targets: Vec<u32> = vec![5, 7, 2, 9, 4, 4, 8, 3, 0, 1];
    let lp = |x: &Vec<u32>| {
        read(model.token_log_probs(
            ids_tensor(std::slice::from_ref(x), 10, 0, &dev),
            ids_tensor(std::slice::from_ref(&targets), 10, 0, &dev),
        ))
    };
    let (la, lb) = (lp(&a), lp(&b));
    for t in 0..7 {
        assert_eq!(la[t], lb[t], "position {t} saw the future");
    }
    assert!(
        (7..10).any(|t| la[t] != lb[t]),
        "changing the inputs must change the later log-probs"
    );
    // Log-probabilities of a fresh model are near log(1/vocab).
    let mean: f32 = la.iter().sum::<f32>() / la.len() as f32;
    assert!(
        (mean - (1.0f32 / 20.0).ln()).abs() < 0.5,
        "mean log-prob {mean}"
    );
}

/// Without autodiff on the CPU, attention is burn's fused kernel; with autodiff it is
/// written out. The two must give the same logits (to float rounding), for a short text
/// and for one filling a 150-token context, with several heads and a padded batch.
#[test]
fn fused_attention_equals_the_written_out_formula() {
    for (context, len) in [(32, 9), (150, 150)] {
        let cfg = ModelConfig {
            context,
            ..small_config()
        };
        let plain = cpu();
        let grad = cpu().autodiff();
        let fused = Gpt::new(&cfg, 23, 5, &plain);
        let written = Gpt::new(&cfg, 23, 5, &grad);
        let rows: Vec<Vec<u32>> = (0..3)
            .map(|r| {
                (0..len - r)
                    .map(|i| ((i * 7 + r * 3) % 23) as u32)
                    .collect()
            })
            .collect();
        let a = fused.forward(ids_tensor(&rows, len, 0, &plain));
        let b = written.forward(ids_tensor(&rows, len, 0, &grad));
        let a = a.into_data().try_into_vec::<f32>().unwrap();
        let b = b.into_data().try_into_vec::<f32>().unwrap();
        assert_eq!(a.len(), 3 * len * 23);
        let worst = a
            .iter()
            .zip(&b)
            .map(|(x, y)| (x - y).abs())
            .fold(0.0f32, f32::max);
        assert!(worst < 1e-5, "context {context}: logits differ by {worst}");
        // Not trivially equal: the logits vary across positions.
        assert!(a.iter().any(|&x| (x - a[0]).abs() > 1e-3));
    }
}

#[test]
fn embeddings_path_equals_token_path() {
    let dev = cpu();
    let model = Gpt::new(&small_config(), 30, 4, &dev);
    let ids = ids_tensor(&[vec![3, 1, 4, 1, 5, 9, 2, 6]], 8, 0, &dev);
    let via_ids = model.forward(ids.clone());
    let via_emb = model.forward_embeddings(model.embed(ids));
    let (x, y) = (
        via_ids.into_data().try_into_vec::<f32>().unwrap(),
        via_emb.into_data().try_into_vec::<f32>().unwrap(),
    );
    assert_eq!(x, y);
}

fn one_sequence_spec(text: &str, steps: usize) -> ExperimentSpec {
    let mut spec = ExperimentSpec::demo();
    spec.data.source = DataSource::Text {
        text: text.into(),
        split: SplitMode::Lines,
    };
    spec.data.heldout_fraction = 0.0;
    spec.tokenizer = TokenizerKind::Char;
    spec.model = small_config();
    spec.training.batch_size = 1;
    spec.training.duration = Duration::Steps(steps);
    spec.training.learning_rate = 1e-2;
    spec.training.warmup_steps = 5;
    spec.training.weight_decay = 0.0;
    spec.training.checkpoint_every = 0;
    spec
}

#[test]
fn a_tiny_model_memorises_one_sequence_and_extracts_it_greedily() {
    let text = "the secret code is 7 3 1 9 and nobody knows it";
    let mut trainer = Trainer::new(one_sequence_spec(text, 150), cpu()).unwrap();
    while block_on(trainer.step()).unwrap().is_some() {}
    let losses = trainer.losses();
    let first = losses[0].1;
    let last = losses.last().unwrap().1;
    assert!(first > 2.0, "starts near log(vocab): {first}");
    assert!(last < 0.05, "memorised: final loss {last}");
    let inst = &trainer.corpus().instances[0];
    let prefix = &inst.tokens[..10];
    let want = &inst.tokens[10..];
    let got = block_on(trainer.model().greedy(prefix, want.len())).unwrap();
    assert_eq!(got, want, "greedy decoding reproduces the suffix");
    // The instance is BOS + the first 32 characters (context 32): the prefix holds BOS and
    // 9 characters, so the decoded suffix is characters 9..32.
    assert_eq!(trainer.corpus().truncated, 1);
    let decoded = trainer.corpus().tokenizer.decode(&got);
    assert_eq!(decoded, &text[9..32]);
}

#[test]
fn held_out_loss_exceeds_training_loss_after_memorising_random_facts() {
    let mut t = Trainer::new(ExperimentSpec::demo(), cpu()).unwrap();
    let (train0, held0) = block_on(t.train_heldout_loss()).unwrap();
    let (train0, held0) = (train0.unwrap(), held0.unwrap());
    assert!(
        (train0 - held0).abs() < 0.2,
        "before training both are near ln(vocab): {train0} {held0}"
    );
    while block_on(t.step()).unwrap().is_some() {}
    let (train1, held1) = block_on(t.train_heldout_loss()).unwrap();
    let (train1, held1) = (train1.unwrap(), held1.unwrap());
    assert!(
        train1 < 0.8 * train0,
        "training loss falls: {train0} -> {train1}"
    );
    assert!(
        held1 > train1 + 0.3,
        "facts are random: held-out {held1} stays above train {train1}"
    );
}

#[test]
fn same_seed_gives_bit_identical_losses_and_another_seed_does_not() {
    let run = |seed: u64| {
        let mut spec = ExperimentSpec::demo();
        spec.seed = seed;
        spec.training.duration = Duration::Steps(12);
        let mut t = Trainer::new(spec, cpu()).unwrap();
        while block_on(t.step()).unwrap().is_some() {}
        t.losses().iter().map(|l| l.1.to_bits()).collect::<Vec<_>>()
    };
    let a = run(7);
    assert_eq!(a, run(7));
    assert_ne!(a, run(8));
}

#[test]
fn data_order_is_a_seeded_permutation_per_epoch_and_never_holds_out_data() {
    let mut spec = ExperimentSpec::demo();
    spec.training.batch_size = 5;
    spec.training.duration = Duration::Epochs(3);
    let corpus = Corpus::build(&spec.data, spec.tokenizer, spec.model.context, spec.seed).unwrap();
    let (steps, stream) = plan(&spec, &corpus);
    let n = corpus.train.len();
    assert_eq!(stream.len(), 3 * n);
    assert_eq!(steps, (3 * n).div_ceil(5));
    let mut sorted_train = corpus.train.clone();
    sorted_train.sort();
    for epoch in stream.chunks(n) {
        let mut e = epoch.to_vec();
        e.sort();
        assert_eq!(
            e, sorted_train,
            "each epoch visits every training instance once"
        );
    }
    assert_ne!(&stream[..n], &stream[n..2 * n], "epochs are reshuffled");
    for h in &corpus.heldout {
        assert!(!stream.contains(h));
    }
    // The trainer records exactly this order.
    let mut trainer = Trainer::with_corpus(spec, corpus, cpu()).unwrap();
    for _ in 0..3 {
        block_on(trainer.step()).unwrap();
    }
    let order = trainer.order();
    assert_eq!(order.len(), 15);
    assert_eq!(order[0], (1, stream[0]));
    assert_eq!(order[14], (3, stream[14]));
}

#[test]
fn learning_rate_schedule_matches_closed_form() {
    let mut spec = ExperimentSpec::demo();
    spec.training.duration = Duration::Steps(110);
    spec.training.warmup_steps = 10;
    spec.training.learning_rate = 1.0;
    spec.training.min_lr_ratio = 0.1;
    let t = Trainer::new(spec.clone(), cpu()).unwrap();
    assert!((t.lr_at(5) - 0.5).abs() < 1e-12);
    assert!((t.lr_at(10) - 1.0).abs() < 1e-12);
    assert!(
        (t.lr_at(60) - 0.55).abs() < 1e-12,
        "cosine midpoint is the mean of peak and floor"
    );
    assert!((t.lr_at(110) - 0.1).abs() < 1e-12);
    spec.training.decay = Decay::Linear;
    let t = Trainer::new(spec, cpu()).unwrap();
    assert!((t.lr_at(35) - (1.0 - 0.9 * 0.25)).abs() < 1e-12);
}

#[test]
fn checkpoints_round_trip_through_safetensors() {
    let mut spec = one_sequence_spec("abcabcabd", 5);
    spec.training.checkpoint_steps = vec![2];
    let mut trainer = Trainer::new(spec, cpu()).unwrap();
    assert_eq!(
        trainer
            .checkpoint_steps()
            .iter()
            .copied()
            .collect::<Vec<_>>(),
        vec![0, 2, 5]
    );
    while block_on(trainer.step()).unwrap().is_some() {}
    let ck = block_on(trainer.checkpoint()).unwrap();
    assert_eq!(ck.step, 5);
    let bytes = ck.to_safetensors().unwrap();
    let back = Checkpoint::from_safetensors(&bytes).unwrap();
    let mut sorted = ck.clone();
    sorted.tensors.sort_by(|a, b| a.name.cmp(&b.name));
    assert_eq!(back, sorted);
    let dev = cpu();
    let model = Gpt::from_checkpoint(&back, &dev).unwrap();
    let ids = ids_tensor(&[vec![0, 1, 2, 0, 1]], 5, 0, &dev);
    let a = trainer
        .model()
        .forward(ids.clone())
        .into_data()
        .try_into_vec::<f32>()
        .unwrap();
    let b = model
        .forward(ids)
        .into_data()
        .try_into_vec::<f32>()
        .unwrap();
    let max_diff = a
        .iter()
        .zip(&b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0f32, f32::max);
    assert!(
        max_diff < 1e-5,
        "the reloaded model computes the same logits: max |diff| {max_diff}"
    );
    // A damaged file is an error, not a panic.
    assert!(Checkpoint::from_safetensors(&bytes[..bytes.len() / 2]).is_err());
    assert!(Checkpoint::from_safetensors(b"not a checkpoint").is_err());
    // A checkpoint whose tensors do not fit its config is refused with the name.
    let mut bad = back.clone();
    let wte = bad
        .tensors
        .iter_mut()
        .find(|t| t.name == "wte.weight")
        .unwrap();
    wte.shape = vec![1, 1];
    let err = Gpt::from_checkpoint(&bad, &dev)
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
    assert!(err.contains("wte.weight"), "{err}");
}

#[test]
fn parameter_count_matches_the_tensors() {
    for tied in [true, false] {
        let mut cfg = small_config();
        cfg.tied_head = tied;
        let model = Gpt::new(&cfg, 17, 1, &cpu());
        let n: usize = model
            .named_tensors()
            .iter()
            .map(|(_, t, _)| t.dims().iter().product::<usize>())
            .sum();
        assert_eq!(n, cfg.n_params(17));
    }
}

/// A packed run trains full windows of `context + 1` tokens, records each text at the
/// step of its first trained token (the packing's order), refuses a regulariser, and
/// learns: its loss falls.
#[test]
fn packed_training_trains_full_windows_in_the_recorded_order() {
    let mut spec = ExperimentSpec::demo();
    spec.training.packed = true;
    spec.training.duration = Duration::Steps(40);
    let corpus = Corpus::build(&spec.data, spec.tokenizer, spec.model.context, spec.seed).unwrap();
    let packing = mnemo_core::train::Packing::plan(&spec, &corpus, &Default::default()).unwrap();
    let mut trainer = Trainer::new(spec.clone(), Device::flex()).unwrap();
    assert_eq!(trainer.total_steps(), 40);
    let mut losses = Vec::new();
    while !trainer.is_done() {
        losses.push(block_on(trainer.step()).unwrap().unwrap().loss);
    }
    let b = spec.training.batch_size;
    assert_eq!(trainer.tokens_seen(), 40 * b * spec.model.context);
    let order: Vec<u32> = trainer.order().into_iter().map(|(_, id)| id).collect();
    assert_eq!(order, packing.stream());
    for (step, id) in trainer.order() {
        assert!(packing.texts(step).contains(&id));
    }
    let first: f32 = losses[..5].iter().sum::<f32>() / 5.0;
    let last: f32 = losses[35..].iter().sum::<f32>() / 5.0;
    assert!(last < first - 0.5, "loss {first} -> {last}");
    // The same spec unpacked trains instances of their own length (no full windows).
    let mut unpacked = spec.clone();
    unpacked.training.packed = false;
    let mut t = Trainer::new(unpacked, Device::flex()).unwrap();
    block_on(t.step()).unwrap();
    assert!(t.tokens_seen() < b * spec.model.context);
    // A regulariser cannot be combined with packing.
    spec.training.regulariser = Some(mnemo_core::spec::Regulariser::SpectralNorm(
        Default::default(),
    ));
    assert!(spec.validate().is_err());
}
