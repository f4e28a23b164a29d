#![allow(clippy::unwrap_used)] // tests unwrap: a failure is the test failing
//! Extraction with soft prompts on real models of the engine (flex CPU backend): window
//! fitting, pairs, prompted decoding, the suffix-only loss, the generator's identity
//! initialisation, a frozen target, and the three methods on a partly memorised model.

use std::sync::OnceLock;

use mnemo_core::backend::Device;
use mnemo_core::burn::tensor::activation::log_softmax;
use mnemo_core::burn::tensor::{Distribution, Tensor};
use mnemo_core::model::{Gpt, ModelConfig, ids_tensor};
use mnemo_core::spec::{CanarySpec, ExperimentSpec, SoftPromptSpec};
use mnemo_core::train::{Trainer, block_on, run_blocking};
use mnemo_core::{Checkpoint, Corpus, PromptPositions};
use mnemo_measures::extraction::{ExtractionRates, ExtractionRow};
use mnemo_measures::softprompt::{
    GENERATOR_BLOCKS, Method, Pair, PromptGenerator, SoftPromptError, SoftPromptRun, extract_pairs,
    fit_lengths, make_pairs, pairs_csv, prompt_batch, prompt_loss, prompt_loss_csv, relative_gain,
    run_blocking as run_prompts, softprompt_csv,
};

fn values<const D: usize>(t: Tensor<D>) -> Vec<f32> {
    t.into_data().try_to_vec::<f32>().unwrap()
}

#[test]
fn fit_lengths_keep_prompt_prefix_and_suffix_inside_the_context() {
    let f = fit_lengths(64, 8, 16, 32).unwrap();
    assert_eq!(
        (f.prompt_len, f.prefix, f.suffix, f.clamped),
        (8, 16, 32, false)
    );
    // The paper's 50 + 50 behind a 20-vector prompt does not fit a context of 64: the
    // dynamic prompt is as long as the prefix, so 2k + s <= 65 with k : s kept at 1 : 1.
    let f = fit_lengths(64, 20, 50, 50).unwrap();
    assert_eq!(
        (f.prompt_len, f.prefix, f.suffix, f.clamped),
        (20, 21, 22, true)
    );
    // A prompt longer than the context is cut to leave room for one prefix and one
    // suffix token.
    let f = fit_lengths(8, 100, 50, 50).unwrap();
    assert_eq!(
        (f.prompt_len, f.prefix, f.suffix, f.clamped),
        (7, 1, 1, true)
    );
    assert_eq!(fit_lengths(2, 1, 1, 1), None);
    assert_eq!(fit_lengths(64, 0, 1, 1), None);
    assert_eq!(fit_lengths(64, 1, 0, 1), None);
    for context in [8, 13, 32, 64, 150, 256] {
        for (l, p, s) in [
            (1, 1, 1),
            (8, 16, 32),
            (20, 50, 50),
            (128, 256, 256),
            (3, 1, 40),
        ] {
            let f = fit_lengths(context, l, p, s).unwrap();
            assert!(
                f.prompt_len.max(f.prefix) + f.prefix + f.suffix <= context + 1,
                "{context} {l} {p} {s}: {f:?}"
            );
            assert!(f.prefix >= 1 && f.suffix >= 1 && f.prefix <= p && f.suffix <= s);
            let fits = l.max(p) + p + s <= context + 1;
            assert_eq!(f.clamped, !fits, "{context} {l} {p} {s}: {f:?}");
        }
    }
}

#[test]
fn relative_gain_is_undefined_without_a_base() {
    assert!((relative_gain(0.6, 0.4).unwrap() - 0.5).abs() < 1e-12);
    assert_eq!(relative_gain(0.2, 0.4), Some(-0.5));
    assert_eq!(relative_gain(0.5, 0.0), None);
    assert_eq!(relative_gain(0.5, f64::NAN), None);
    assert_eq!(relative_gain(f64::NAN, 0.5), None);
}

fn canary_corpus() -> Corpus {
    let mut data = ExperimentSpec::softprompt_demo().data;
    data.canary = Some(CanarySpec {
        prefix: "my PIN is ".into(),
        digits: 4,
        repetitions: 5,
    });
    Corpus::build(&data, mnemo_core::TokenizerKind::Char, 64, 7).unwrap()
}

#[test]
fn pairs_are_one_per_distinct_text_and_split_by_the_seed() {
    let corpus = canary_corpus();
    let settings = SoftPromptSpec {
        prompt_len: 8,
        prefix: 16,
        suffix: 32,
        test_fraction: 0.25,
        ..SoftPromptSpec::default()
    };
    let vocab = corpus.tokenizer.vocab_size();
    let pairs = make_pairs(&corpus, &settings, 64, vocab, 7).unwrap();
    // 64 facts plus 5 canary copies, all trained on: the copies give one pair.
    assert_eq!(corpus.train.len(), 69);
    assert_eq!(pairs.duplicates, 4);
    assert_eq!(pairs.skipped, 0);
    let n = pairs.train.len() + pairs.test.len();
    assert_eq!(n, 65);
    assert_eq!(pairs.test.len(), (0.25f64 * 65.0).round() as usize);
    // No text on both sides; every pair is the instance's start.
    let texts = |ps: &[Pair]| -> Vec<String> {
        ps.iter()
            .map(|p| corpus.get(p.instance).unwrap().text.clone())
            .collect()
    };
    let train_texts = texts(&pairs.train);
    for t in texts(&pairs.test) {
        assert!(!train_texts.contains(&t), "{t} is on both sides");
    }
    let mut scaled = 0;
    for p in pairs.train.iter().chain(&pairs.test) {
        let tokens = &corpus.get(p.instance).unwrap().tokens;
        let (k, s) = (p.prefix.len(), p.suffix.len());
        assert_eq!(p.prefix, tokens[..k]);
        assert_eq!(p.suffix, tokens[k..k + s]);
        assert_eq!(p.prefix[0], corpus.tokenizer.bos());
        assert!(k <= 16 && s <= 32);
        if tokens.len() < 48 {
            scaled += 1;
            assert_eq!(k + s, tokens.len(), "a short instance is split whole");
        } else {
            assert_eq!((k, s), (16, 32));
        }
    }
    assert_eq!(pairs.scaled, scaled);
    let counted: usize = pairs.pair_lengths().iter().map(|l| l.train + l.test).sum();
    assert_eq!(counted, n);
    // The split is the seed's: the same seed gives the same pairs, another seed another
    // split of the same pairs.
    assert_eq!(make_pairs(&corpus, &settings, 64, vocab, 7).unwrap(), pairs);
    let other = make_pairs(&corpus, &settings, 64, vocab, 8).unwrap();
    assert_ne!(other.test, pairs.test);
    let mut a: Vec<u32> = pairs
        .train
        .iter()
        .chain(&pairs.test)
        .map(|p| p.instance)
        .collect();
    let mut b: Vec<u32> = other
        .train
        .iter()
        .chain(&other.test)
        .map(|p| p.instance)
        .collect();
    a.sort_unstable();
    b.sort_unstable();
    assert_eq!(a, b);
}

fn small_model(n_layers: usize, seed: u64) -> Gpt {
    let config = ModelConfig {
        n_layers,
        d_model: 32,
        n_heads: 4,
        context: 16,
        tied_head: false,
        activation: Default::default(),
        layout: Default::default(),
    };
    Gpt::new(&config, 17, seed, &Device::flex())
}

/// Greedy decoding by hand: one `forward_prompted` per token.
fn greedy_by_hand(model: &Gpt, soft: &Tensor<2>, prompt: &[u32], n: usize) -> Vec<u32> {
    let dev = Device::flex();
    let mut seq = prompt.to_vec();
    for _ in 0..n {
        let ids = ids_tensor(&[seq.clone()], seq.len(), 0, &dev);
        let logits = model.forward_prompted(soft.clone().unsqueeze::<3>(), ids);
        let [_, t, v] = logits.dims();
        let last = logits.slice([0..1, t - 1..t, 0..v]).reshape([v]);
        let next = last.argmax(0).into_data().iter::<i64>().next().unwrap();
        seq.push(next as u32);
    }
    seq.split_off(prompt.len())
}

#[test]
fn greedy_embeddings_decodes_like_forward_prompted_one_token_at_a_time() {
    let model = small_model(2, 11);
    let dev = Device::flex();
    let soft = |l: usize| Tensor::<2>::random([l, 32], Distribution::Normal(0.0, 1.0), &dev);
    // Mixed prompt and prefix lengths (grouped internally); 3 + 5 + 6 - 1 <= 16 fits.
    let softs = vec![soft(3), soft(3), soft(1), soft(3), soft(4)];
    let prompts: Vec<Vec<u32>> = vec![
        vec![1, 2, 3, 4, 5],
        vec![6, 7, 8, 9, 10],
        vec![3, 3],
        vec![11, 12, 13, 14, 15],
        vec![],
    ];
    let n = 6;
    let got =
        block_on(model.greedy_embeddings(PromptPositions::Kept, &softs, &prompts, n)).unwrap();
    assert_eq!(got.len(), prompts.len());
    for i in 0..prompts.len() {
        assert_eq!(got[i].len(), n);
        assert_eq!(
            got[i],
            greedy_by_hand(&model, &softs[i], &prompts[i], n),
            "row {i}"
        );
    }
    // Longer than the context: the tokens slide, the prompt stays; no panic, n tokens.
    let long =
        block_on(model.greedy_embeddings(PromptPositions::Kept, &[soft(10)], &[vec![1; 9]], 12))
            .unwrap();
    assert_eq!(long[0].len(), 12);
    let huge =
        block_on(model.greedy_embeddings(PromptPositions::Kept, &[soft(40)], &[vec![2; 3]], 3))
            .unwrap();
    assert_eq!(huge[0].len(), 3);
    // A prompt of the wrong width gives nothing; no rows give nothing.
    let wrong = Tensor::<2>::zeros([2, 31], &dev);
    let out = block_on(model.greedy_embeddings(PromptPositions::Kept, &[wrong], &[vec![1, 2]], 3))
        .unwrap();
    assert_eq!(out, vec![Vec::<u32>::new()]);
    assert!(
        block_on(model.greedy_embeddings(PromptPositions::Kept, &[], &[], 3))
            .unwrap()
            .is_empty()
    );
}

#[test]
fn the_loss_scores_the_suffix_tokens_only() {
    let model = small_model(2, 5);
    let dev = Device::flex();
    let pairs = [
        Pair {
            instance: 0,
            prefix: vec![1, 4, 9],
            suffix: vec![2, 7, 7, 3],
        },
        Pair {
            instance: 1,
            prefix: vec![1, 5, 5, 6, 8],
            suffix: vec![9, 10],
        },
    ];
    let refs: Vec<&Pair> = pairs.iter().collect();
    // Different prompt lengths per row (as the dynamic prompt has): the rows are
    // gathered into place.
    let lens = [2, 5];
    let prompts = Tensor::<3>::random([2, 5, 32], Distribution::Normal(0.0, 1.0), &dev);
    let batch = prompt_batch(&refs, &lens);
    assert_eq!(batch.len, 11); // 5 + 5 + 2 - 1
    assert_eq!(batch.scored_count(), 6);
    let loss = |b: &mnemo_measures::softprompt::PromptBatch| -> f32 {
        prompt_loss(&model, PromptPositions::Kept, prompts.clone(), b)
            .unwrap()
            .into_scalar()
    };
    let base = loss(&batch);
    // The same mean by hand: each row through `forward_prompted`, the log-probability
    // of each suffix token at the position before it.
    let mut total = 0.0f64;
    for (i, p) in pairs.iter().enumerate() {
        let l = lens[i];
        let soft = prompts.clone().slice([i..i + 1, 0..l, 0..32]);
        let mut tokens = p.prefix.clone();
        tokens.extend_from_slice(&p.suffix[..p.suffix.len() - 1]);
        let ids = ids_tensor(&[tokens.clone()], tokens.len(), 0, &dev);
        let logp = values(log_softmax(model.forward_prompted(soft, ids), 2));
        for (j, &target) in p.suffix.iter().enumerate() {
            let pos = l + p.prefix.len() - 1 + j;
            total -= logp[pos * 17 + target as usize] as f64;
        }
    }
    let by_hand = (total / 6.0) as f32;
    assert!((base - by_hand).abs() < 1e-5, "{base} vs {by_hand}");
    // Changing the label at a prefix position or a prompt position changes nothing ...
    let k0 = pairs[0].prefix.len();
    for pos in [lens[0] + k0 - 2, 0, lens[0] - 1] {
        let mut b = batch.clone();
        assert!(!b.scored[0][pos]);
        b.labels[0][pos] = (b.labels[0][pos] + 3) % 17;
        assert_eq!(loss(&b).to_bits(), base.to_bits(), "position {pos}");
    }
    // ... and so does padding after the shorter row's end (row 0 ends at 2 + 6).
    let mut b = batch.clone();
    assert!(!b.scored[0][9]);
    b.labels[0][9] = 4;
    assert_eq!(loss(&b).to_bits(), base.to_bits());
    // ... while changing a suffix label does.
    let first_suffix = lens[0] + k0 - 1;
    assert!(batch.scored[0][first_suffix]);
    let mut b = batch.clone();
    b.labels[0][first_suffix] = (b.labels[0][first_suffix] + 3) % 17;
    assert_ne!(loss(&b).to_bits(), base.to_bits());
    // The scored positions are exactly the suffix positions.
    for (i, p) in pairs.iter().enumerate() {
        let start = lens[i] + p.prefix.len() - 1;
        let scored: Vec<usize> = (0..batch.len).filter(|&t| batch.scored[i][t]).collect();
        assert_eq!(scored, (start..start + p.suffix.len()).collect::<Vec<_>>());
        for (j, &s) in p.suffix.iter().enumerate() {
            assert_eq!(batch.labels[i][start + j], s);
        }
    }
}

fn checkpoint_of(model: &Gpt) -> Checkpoint {
    let config = ModelConfig {
        n_layers: model.blocks.len(),
        d_model: 32,
        n_heads: 4,
        context: 16,
        tied_head: false,
        activation: Default::default(),
        layout: Default::default(),
    };
    block_on(model.snapshot(0, config)).unwrap()
}

#[test]
fn the_generator_starts_as_the_identity() {
    let dev = Device::flex().autodiff();
    // A 1-block target (the second generator block is drawn fresh) and a 3-block one
    // (the first two are copied).
    for n_layers in [1, 3] {
        let target = small_model(n_layers, 3);
        let ck = checkpoint_of(&target);
        let generator = PromptGenerator::from_checkpoint(&ck, 9, &dev).unwrap();
        assert_eq!(generator.blocks.len(), GENERATOR_BLOCKS);
        let rows = vec![vec![1u32, 5, 16, 2, 2, 9, 0], vec![3, 3, 3, 3, 4, 4, 4]];
        let ids = ids_tensor(&rows, 7, 0, &dev);
        let embedded = values(target.embed(ids_tensor(&rows, 7, 0, &Device::flex())));
        let states = generator.hidden_states(ids.clone());
        assert_eq!(states.len(), GENERATOR_BLOCKS + 1);
        for (i, h) in states.into_iter().enumerate() {
            let h = values(h);
            let diff = h
                .iter()
                .zip(&embedded)
                .map(|(a, b)| (a - b).abs())
                .fold(0.0f32, f32::max);
            assert!(diff <= 1e-6, "{n_layers} layers, state {i}: {diff}");
        }
        // The prompt is the state after block 1: the prefix's token embeddings.
        let prompt = values(generator.prompt(ids));
        assert_eq!(prompt.len(), embedded.len());
        assert!(
            prompt
                .iter()
                .zip(&embedded)
                .all(|(a, b)| (a - b).abs() <= 1e-6)
        );
        // Copied blocks keep the target's attention and MLP input weights.
        let qkv = |g: &mnemo_core::model::Block| values(g.attn.qkv.weight.val());
        assert_eq!(qkv(&generator.blocks[0]), qkv(&target.blocks[0]));
        if n_layers >= 2 {
            assert_eq!(qkv(&generator.blocks[1]), qkv(&target.blocks[1]));
        }
        for b in &generator.blocks {
            let zero = |t: Tensor<2>| values(t).iter().all(|&v| v == 0.0);
            assert!(zero(b.attn.proj.weight.val()) && zero(b.mlp.proj.weight.val()));
        }
    }
}

/// Train `spec`'s model to the end: its corpus and last checkpoint.
fn trained(spec: &ExperimentSpec) -> (Corpus, Checkpoint) {
    let mut trainer = Trainer::new(spec.clone(), Device::flex()).unwrap();
    let mut last = None;
    run_blocking(
        &mut trainer,
        |_| std::ops::ControlFlow::Continue(()),
        |ck| {
            last = Some(ck);
            Ok(())
        },
    )
    .unwrap();
    (trainer.corpus().clone(), last.unwrap())
}

/// The soft-prompt demo's model (facts, char tokenizer, 300 steps: partly memorised),
/// trained once for all tests.
fn memorised() -> &'static (ExperimentSpec, Corpus, Checkpoint) {
    static RUN: OnceLock<(ExperimentSpec, Corpus, Checkpoint)> = OnceLock::new();
    RUN.get_or_init(|| {
        let spec = ExperimentSpec::softprompt_demo();
        let (corpus, ck) = trained(&spec);
        (spec, corpus, ck)
    })
}

fn bits(ck: &Checkpoint) -> Vec<(String, Vec<u32>)> {
    ck.tensors
        .iter()
        .map(|t| {
            (
                t.name.clone(),
                t.values.iter().map(|v| v.to_bits()).collect(),
            )
        })
        .collect()
}

#[test]
fn prompt_training_leaves_the_target_bit_identical() {
    let (spec, corpus, ck) = memorised();
    let settings = SoftPromptSpec {
        steps: 15,
        ..spec.softprompt.unwrap()
    };
    let mut run = SoftPromptRun::new(
        ck,
        corpus,
        &settings,
        spec.seed,
        PromptPositions::Kept,
        &Device::flex(),
    )
    .unwrap();
    let prompt_before = values(run.constant().soft_prompt().unwrap().vectors.val());
    let gen_before = values(
        run.dynamic().generator().unwrap().blocks[0]
            .attn
            .proj
            .weight
            .val(),
    );
    let mut seen = Vec::new();
    let result = run_prompts(&mut run, |step, progress| {
        seen.push((step.method, step.step, progress.done, progress.total));
        std::ops::ControlFlow::Continue(())
    })
    .unwrap();
    assert_eq!(seen.len(), 30);
    assert_eq!(seen[0], (Method::Constant, 1, 1, 30));
    assert_eq!(seen[29], (Method::Dynamic, 15, 30, 30));
    // The prompts moved ...
    let prompt_after = values(run.constant().soft_prompt().unwrap().vectors.val());
    assert_ne!(prompt_before, prompt_after);
    let gen_after = values(
        run.dynamic().generator().unwrap().blocks[0]
            .attn
            .proj
            .weight
            .val(),
    );
    assert_ne!(gen_before, gen_after);
    // ... and the target did not, bit for bit, in the run and in both trainers.
    for target in [
        run.target(),
        run.constant().target(),
        run.dynamic().target(),
    ] {
        let after = block_on(target.snapshot(ck.step, ck.config)).unwrap();
        assert_eq!(bits(&after), bits(ck));
    }
    assert_eq!(result.method(Method::Constant).unwrap().steps, 15);
    assert_eq!(result.method(Method::Dynamic).unwrap().losses.len(), 15);
    assert!(run.is_done());
    assert!(
        block_on(run.step()).unwrap().is_none(),
        "a finished run stays done"
    );

    // The tables: exact headers, one row per method, one per test pair and method.
    let csv = softprompt_csv(&result).unwrap();
    let lines: Vec<&str> = csv.lines().collect();
    assert_eq!(lines[0], "method,exact_rate,fractional_rate,relative_gain");
    assert_eq!(lines.len(), 4);
    assert!(lines[1].starts_with("none,") && lines[1].ends_with(",undefined"));
    assert!(lines[2].starts_with("constant,") && lines[3].starts_with("dynamic,"));
    let pairs = pairs_csv(&result).unwrap();
    assert!(pairs.starts_with("pair,method,exact,fraction\n"));
    assert_eq!(pairs.lines().count(), 1 + 3 * result.test_pairs);
    let losses = prompt_loss_csv(&result).unwrap();
    assert!(losses.starts_with("method,step,loss\nconstant,1,"));
    assert_eq!(losses.lines().count(), 1 + 30);
}

#[test]
fn three_methods_on_a_partly_memorised_model() {
    let (spec, corpus, ck) = memorised();
    let settings = SoftPromptSpec {
        steps: 150,
        ..spec.softprompt.unwrap()
    };
    let start = std::time::Instant::now();
    let mut run = SoftPromptRun::new(
        ck,
        corpus,
        &settings,
        spec.seed,
        PromptPositions::Kept,
        &Device::flex(),
    )
    .unwrap();
    let result = run_prompts(&mut run, |_, _| std::ops::ControlFlow::Continue(())).unwrap();
    let seconds = start.elapsed().as_secs_f64();
    assert_eq!((result.train_pairs, result.test_pairs), (32, 32));
    assert!(!result.lengths.clamped);
    // The same pairs for all three methods, in test order.
    let none = result.method(Method::None).unwrap();
    for m in Method::ALL {
        let r = result.method(m).unwrap();
        let ids: Vec<u32> = r.rows.iter().map(|r| r.instance).collect();
        assert_eq!(
            ids,
            run.pairs()
                .test
                .iter()
                .map(|p| p.instance)
                .collect::<Vec<_>>()
        );
        assert_eq!(r.rates, ExtractionRates::of(&r.rows));
        for row in &r.rows {
            assert_eq!(row.generated.len(), row.suffix_len);
        }
        if m != Method::None {
            assert_eq!(
                r.fractional_gain,
                relative_gain(r.rates.fractional_rate, none.rates.fractional_rate)
            );
            // Prompt training lowers the suffix loss.
            let first = r.losses[0].1;
            let last: f32 = r.losses[r.losses.len() - 10..]
                .iter()
                .map(|l| l.1)
                .sum::<f32>()
                / 10.0;
            assert!(last < first, "{m}: loss {first} -> {last}");
        }
    }
    assert_eq!((none.exact_gain, none.fractional_gain), (None, None));
    // The no-prompt rows are plain greedy extraction from the prefix.
    let plain = block_on(extract_pairs(
        run.target(),
        PromptPositions::Kept,
        &run.pairs().test,
        None,
    ))
    .unwrap();
    assert_eq!(plain, none.rows);

    // On the pairs the prompts trained on, the dynamic prompt extracts more than no
    // prompt: the generator fits them.
    let train = &run.pairs().train;
    let rate = |rows: Vec<ExtractionRow>| ExtractionRates::of(&rows).fractional_rate;
    let train_none = rate(
        block_on(extract_pairs(
            run.target(),
            PromptPositions::Kept,
            train,
            None,
        ))
        .unwrap(),
    );
    let train_constant = rate(block_on(run.constant().evaluate(train)).unwrap());
    let train_dynamic = rate(block_on(run.dynamic().evaluate(train)).unwrap());
    let f = |m: Method| {
        let r = &result.method(m).unwrap().rates;
        format!(
            "exact {:.3}, fractional {:.3}",
            r.exact_rate, r.fractional_rate
        )
    };
    eprintln!(
        "soft prompts on the demo model ({seconds:.1} s, {} steps each): held-out pairs: none {}; \
         constant {}; dynamic {}. Training pairs (fractional): none {train_none:.3}, constant \
         {train_constant:.3}, dynamic {train_dynamic:.3}",
        settings.steps,
        f(Method::None),
        f(Method::Constant),
        f(Method::Dynamic)
    );
    assert!(
        train_dynamic > train_none + 0.1,
        "dynamic {train_dynamic} vs none {train_none} on the training pairs"
    );
}

#[test]
fn bad_settings_and_foreign_models_are_errors_not_panics() {
    let (spec, corpus, ck) = memorised();
    let dev = Device::flex();
    let settings = spec.softprompt.unwrap();
    let bad = SoftPromptSpec {
        prompt_len: 0,
        ..settings
    };
    let err = SoftPromptRun::new(ck, corpus, &bad, 1, PromptPositions::Kept, &dev)
        .err()
        .unwrap();
    assert!(matches!(err, SoftPromptError::Settings(_)), "{err}");
    assert!(err.to_string().contains("softprompt.prompt_len"), "{err}");
    let bad = SoftPromptSpec {
        embed_lr: 2.0,
        ..settings
    };
    assert!(SoftPromptRun::new(ck, corpus, &bad, 1, PromptPositions::Kept, &dev).is_err());
    // One training text: nothing to train on and test with.
    let mut one = corpus.clone();
    one.train.truncate(1);
    let err = SoftPromptRun::new(ck, &one, &settings, 1, PromptPositions::Kept, &dev)
        .err()
        .unwrap();
    assert!(matches!(err, SoftPromptError::TooFewPairs(1)), "{err}");
    // A model with a smaller vocabulary than the corpus.
    let small = Gpt::new(&ck.config, 4, 0, &dev);
    let small_ck = block_on(small.snapshot(0, ck.config)).unwrap();
    let err = SoftPromptRun::new(&small_ck, corpus, &settings, 1, PromptPositions::Kept, &dev)
        .err()
        .unwrap();
    assert!(
        matches!(err, SoftPromptError::Vocabulary { vocab: 4, .. }),
        "{err}"
    );
}

/// With shifted positions, a prompt made of a text's own token embeddings is that text:
/// the logits of `[embed(head) ; rest]` equal the model's logits of `head ++ rest`, and
/// greedy decoding behind it equals greedy decoding of the whole text.
#[test]
fn a_shifted_prompt_of_token_embeddings_reads_as_the_tokens_themselves() {
    let model = small_model(2, 5);
    let dev = Device::flex();
    let head: Vec<u32> = vec![1, 7, 3, 9];
    let rest: Vec<u32> = vec![2, 4, 6];
    let soft = model
        .embed(ids_tensor(std::slice::from_ref(&head), 4, 0, &dev))
        .reshape([4, 32]);
    let whole: Vec<u32> = head.iter().chain(&rest).copied().collect();
    let want = values(model.forward(ids_tensor(std::slice::from_ref(&whole), 7, 0, &dev)));
    let ids = ids_tensor(std::slice::from_ref(&rest), 3, 0, &dev);
    let got = values(model.forward_prompted_at(
        PromptPositions::Shifted,
        soft.clone().unsqueeze::<3>(),
        ids.clone(),
    ));
    assert_eq!(got.len(), want.len());
    for (a, b) in got.iter().zip(&want) {
        assert!((a - b).abs() < 1e-5, "{a} vs {b}");
    }
    // Kept positions read the same prompt differently (the tokens sit at 0, 1, 2).
    let kept = values(model.forward_prompted_at(PromptPositions::Kept, soft.unsqueeze::<3>(), ids));
    assert!(kept.iter().zip(&want).any(|(a, b)| (a - b).abs() > 1e-3));
    let n = 5;
    let behind = block_on(
        model.greedy_embeddings(
            PromptPositions::Shifted,
            &[model
                .embed(ids_tensor(std::slice::from_ref(&head), 4, 0, &dev))
                .reshape([4, 32])],
            std::slice::from_ref(&rest),
            n,
        ),
    )
    .unwrap();
    let plain = block_on(model.greedy_batch(&[whole], n)).unwrap();
    assert_eq!(behind, plain);
}

/// The loss of a batch laid out by `prompt_batch` with shifted positions equals the
/// suffix cross-entropy computed by hand from `forward_prompted_at`, rows of different
/// prompt lengths included.
#[test]
fn shifted_prompt_loss_matches_the_forward_pass_row_by_row() {
    let model = small_model(1, 8);
    let dev = Device::flex();
    let pairs = [
        Pair {
            instance: 0,
            prefix: vec![1, 2, 3],
            suffix: vec![4, 5],
        },
        Pair {
            instance: 1,
            prefix: vec![6, 7],
            suffix: vec![8, 9, 10],
        },
    ];
    let refs: Vec<&Pair> = pairs.iter().collect();
    let lens = [3, 2];
    let batch = prompt_batch(&refs, &lens);
    let prompts = Tensor::<3>::random([2, 3, 32], Distribution::Normal(0.0, 1.0), &dev);
    let loss =
        values(prompt_loss(&model, PromptPositions::Shifted, prompts.clone(), &batch).unwrap())[0];
    let mut total = 0.0f32;
    let mut count = 0;
    for (i, p) in pairs.iter().enumerate() {
        let l = lens[i];
        let soft = prompts.clone().slice(i..i + 1).slice([0..1, 0..l, 0..32]);
        let tokens: Vec<u32> = p
            .prefix
            .iter()
            .chain(&p.suffix[..p.suffix.len() - 1])
            .copied()
            .collect();
        let ids = ids_tensor(std::slice::from_ref(&tokens), tokens.len(), 0, &dev);
        let logp = values(log_softmax(
            model.forward_prompted_at(PromptPositions::Shifted, soft, ids),
            2,
        ));
        let v = 17;
        for (j, &target) in p.suffix.iter().enumerate() {
            let pos = l + p.prefix.len() - 1 + j;
            total -= logp[pos * v + target as usize];
            count += 1;
        }
    }
    let want = total / count as f32;
    assert!((loss - want).abs() < 1e-5, "{loss} vs {want}");
}

/// The hidden-context demo (records trained packed behind a source line the pairs never
/// hold), run as shipped:
/// - the setting does what it is for: greedy extraction from a record's own prefix (what
///   an attacker has, and what the pairs hold) reproduces clearly less of the suffixes
///   than the same prefix behind its true source line;
/// - on the demo's seed the prompts order as in the papers, dynamic >= constant >= none
///   in both rates on the test pairs (README: the other seeds, where they do not).
#[test]
fn hidden_context_demo_needs_its_source_line_and_prompts_order_as_in_the_papers() {
    let spec = ExperimentSpec::softprompt_context_demo();
    let (corpus, ck) = trained(&spec);
    let corpus = &corpus;
    let model = Gpt::from_checkpoint(&ck, &Device::flex()).unwrap();
    let settings = spec.softprompt.unwrap();
    let pairs = make_pairs(
        corpus,
        &settings,
        64,
        corpus.tokenizer.vocab_size(),
        spec.seed,
    )
    .unwrap();
    let all: Vec<Pair> = pairs.train.iter().chain(&pairs.test).cloned().collect();
    assert_eq!(all.len(), 64);
    let visible = block_on(extract_pairs(&model, PromptPositions::Shifted, &all, None)).unwrap();
    // The same pairs with the hidden source line put back between BOS and the text.
    let behind: Vec<Pair> = all
        .iter()
        .map(|p| {
            let inst = corpus.get(p.instance).unwrap();
            assert!(inst.hidden > 0);
            let mut prefix = inst.tokens[..1 + inst.hidden].to_vec();
            prefix.extend_from_slice(&p.prefix[1..]);
            assert!(!p.prefix[1..].starts_with(&inst.tokens[1..1 + inst.hidden]));
            Pair {
                prefix,
                ..p.clone()
            }
        })
        .collect();
    let oracle = block_on(extract_pairs(
        &model,
        PromptPositions::Shifted,
        &behind,
        None,
    ))
    .unwrap();
    let (v, o) = (
        ExtractionRates::of(&visible).fractional_rate,
        ExtractionRates::of(&oracle).fractional_rate,
    );
    eprintln!("fractional: visible prefix {v:.3}, behind the source line {o:.3}");
    assert!(o > v + 0.1, "visible {v:.3}, behind the source line {o:.3}");

    let mut run = SoftPromptRun::new(
        &ck,
        corpus,
        &settings,
        spec.seed,
        PromptPositions::for_training(spec.training.packed),
        &Device::flex(),
    )
    .unwrap();
    assert_eq!(run.positions(), PromptPositions::Shifted);
    let result = run_prompts(&mut run, |_, _| std::ops::ControlFlow::Continue(())).unwrap();
    let rate = |m: Method| result.method(m).unwrap().rates;
    let (none, constant, dynamic) = (
        rate(Method::None),
        rate(Method::Constant),
        rate(Method::Dynamic),
    );
    eprintln!(
        "fractional none {:.3}, constant {:.3}, dynamic {:.3}; exact {:.3}, {:.3}, {:.3}",
        none.fractional_rate,
        constant.fractional_rate,
        dynamic.fractional_rate,
        none.exact_rate,
        constant.exact_rate,
        dynamic.exact_rate
    );
    assert!(dynamic.fractional_rate >= constant.fractional_rate);
    assert!(constant.fractional_rate >= none.fractional_rate);
    assert!(dynamic.exact_rate >= constant.exact_rate);
    assert!(constant.exact_rate >= none.exact_rate);
    assert!(dynamic.fractional_rate >= none.fractional_rate + 0.1);
}
