#![allow(clippy::unwrap_used)] // tests unwrap: a failure is the test failing
//! Extraction on real models of the engine (flex CPU backend): the split lengths, the
//! rates, batched greedy decoding, and a model that memorised its training lines.

use std::sync::OnceLock;

use mnemo_core::backend::Device;
use mnemo_core::model::{Gpt, ModelConfig};
use mnemo_core::spec::{DataSource, Decay, Duration, ExperimentSpec, ExtractionSpec, SplitMode};
use mnemo_core::train::{Trainer, block_on, run_blocking};
use mnemo_core::{Checkpoint, Corpus, TokenizerKind};
use mnemo_measures::extraction::{
    ExtractionError, ExtractionRates, ExtractionRow, extract, extraction_csv, split_lengths,
};

#[test]
fn split_lengths_keep_the_request_or_scale_it_down() {
    assert_eq!(split_lengths(100, 50, 50), Some((50, 50)));
    assert_eq!(
        split_lengths(130, 50, 50),
        Some((50, 50)),
        "extra tokens unused"
    );
    assert_eq!(split_lengths(57, 50, 50), Some((28, 29)));
    assert_eq!(split_lengths(99, 50, 50), Some((49, 50)));
    assert_eq!(split_lengths(2, 50, 50), Some((1, 1)));
    assert_eq!(split_lengths(3, 50, 50), Some((1, 2)));
    assert_eq!(split_lengths(1, 50, 50), None);
    assert_eq!(split_lengths(0, 50, 50), None);
    // Unequal requests scale in proportion, each side at least one token.
    assert_eq!(split_lengths(20, 30, 10), Some((15, 5)));
    assert_eq!(split_lengths(10, 1, 256), Some((1, 9)));
    assert_eq!(split_lengths(10, 256, 1), Some((9, 1)));
    assert_eq!(split_lengths(10, 0, 5), None);
    assert_eq!(split_lengths(10, 5, 0), None);
    for n in 2..300 {
        for (p, s) in [(50, 50), (1, 1), (7, 3), (1, 256), (256, 256)] {
            let (k, l) = split_lengths(n, p, s).unwrap();
            assert!(k >= 1 && l >= 1 && k + l <= n, "n={n} p={p} s={s}: {k} {l}");
            if n >= p + s {
                assert_eq!((k, l), (p, s));
            } else {
                assert_eq!(k + l, n, "a scaled split uses the whole sequence");
            }
        }
    }
}

#[test]
fn rates_are_exact_share_and_token_weighted_fraction() {
    let rows = [
        // 4 of 4 reproduced.
        ExtractionRow::score(0, 3, vec![1, 2, 3, 4], vec![1, 2, 3, 4]),
        // 1 of 2 (position by position: the shifted 2 does not count at position 0).
        ExtractionRow::score(1, 3, vec![5, 2], vec![2, 2]),
        // 0 of 6.
        ExtractionRow::score(2, 3, vec![1, 1, 1, 1, 1, 1], vec![2, 2, 2, 2, 2, 2]),
    ];
    assert!(rows[0].exact && rows[0].fraction == 1.0);
    assert!(!rows[1].exact && rows[1].fraction == 0.5);
    assert!(!rows[2].exact && rows[2].fraction == 0.0);
    assert_eq!(rows[1].suffix_len, 2);
    let r = ExtractionRates::of(&rows);
    assert_eq!(r.n, 3);
    assert!((r.exact_rate - 1.0 / 3.0).abs() < 1e-12);
    // Token-weighted: (4 + 1 + 0) / (4 + 2 + 6), not the mean fraction (1 + 0.5 + 0) / 3.
    assert!((r.fractional_rate - 5.0 / 12.0).abs() < 1e-12, "{r:?}");
    let empty = ExtractionRates::of(&[]);
    assert_eq!(
        empty,
        ExtractionRates {
            n: 0,
            exact_rate: 0.0,
            fractional_rate: 0.0
        }
    );
    let csv = extraction_csv(&rows).unwrap();
    let lines: Vec<&str> = csv.lines().collect();
    assert_eq!(lines[0], "instance,prefix_len,suffix_len,exact,fraction");
    assert_eq!(lines[1], "0,3,4,true,1");
    assert_eq!(lines[2], "1,3,2,false,0.5");
    assert_eq!(lines.len(), 4);
}

#[test]
fn greedy_batch_equals_greedy_one_prompt_at_a_time() {
    let dev = Device::flex();
    let config = ModelConfig {
        n_layers: 2,
        d_model: 32,
        n_heads: 4,
        context: 8,
        tied_head: false,
        activation: Default::default(),
        layout: Default::default(),
    };
    let model = Gpt::new(&config, 17, 11, &dev);
    let mut x: u64 = 99;
    let mut draw = |len: usize| -> Vec<u32> {
        (0..len)
            .map(|_| {
                x = x
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                ((x >> 33) % 17) as u32
            })
            .collect()
    };
    // Mixed lengths (grouped internally), some longer than the context, and more new
    // tokens than the context holds, so the window slides.
    let prompts: Vec<Vec<u32>> = [3, 3, 5, 1, 3, 12, 5, 8, 0]
        .into_iter()
        .map(&mut draw)
        .collect();
    let n = 11;
    let batched = block_on(model.greedy_batch(&prompts, n)).unwrap();
    assert_eq!(batched.len(), prompts.len());
    for (p, got) in prompts.iter().zip(&batched) {
        let one = block_on(model.greedy(p, n)).unwrap();
        assert_eq!(got, &one, "prompt {p:?}");
        assert_eq!(got.len(), if p.is_empty() { 0 } else { n });
    }
    // A fresh model does not just repeat one token everywhere: the rows differ.
    assert!(batched.iter().any(|g| g != &batched[0]));
    assert!(
        block_on(model.greedy_batch(&[], 5)).unwrap().is_empty(),
        "no prompts, no output"
    );
    let none = block_on(model.greedy_batch(&prompts[..2], 0)).unwrap();
    assert_eq!(none, vec![Vec::<u32>::new(); 2]);
}

/// Ten lines of 24 random letters and digits; eight are trained on, two held out.
fn random_lines() -> String {
    const ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789";
    let mut x: u64 = 0x5EED_1234;
    let mut lines = Vec::new();
    for _ in 0..10 {
        let line: String = (0..24)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                char::from(ALPHABET[(x % ALPHABET.len() as u64) as usize])
            })
            .collect();
        lines.push(line);
    }
    lines.join("\n")
}

fn memorise_spec() -> ExperimentSpec {
    let mut spec = ExperimentSpec::demo();
    spec.name = "memorise random lines".into();
    spec.seed = 3;
    spec.data.source = DataSource::Text {
        text: random_lines(),
        split: SplitMode::Lines,
    };
    spec.data.heldout_fraction = 0.2;
    spec.tokenizer = TokenizerKind::Char;
    spec.model = ModelConfig {
        n_layers: 2,
        d_model: 64,
        n_heads: 4,
        context: 32,
        tied_head: true,
        activation: Default::default(),
        layout: Default::default(),
    };
    spec.training.batch_size = 8;
    spec.training.duration = Duration::Steps(300);
    spec.training.learning_rate = 5e-3;
    spec.training.warmup_steps = 10;
    spec.training.decay = Decay::Cosine;
    spec.training.weight_decay = 0.0;
    spec.training.checkpoint_every = 0;
    spec
}

/// The corpus and final checkpoint of [`memorise_spec`], trained once for all tests.
fn memorised() -> &'static (Corpus, Checkpoint, f32) {
    static RUN: OnceLock<(Corpus, Checkpoint, f32)> = OnceLock::new();
    RUN.get_or_init(|| {
        let mut trainer = Trainer::new(memorise_spec(), Device::flex()).unwrap();
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
        let loss = trainer.losses().last().unwrap().1;
        (trainer.corpus().clone(), last.unwrap(), loss)
    })
}

#[test]
fn memorised_training_lines_are_extracted_and_unseen_lines_are_not() {
    let (corpus, ck, loss) = memorised();
    assert_eq!(ck.step, 300);
    // The first character after BOS is a guess among the 8 lines (ln 8 / 25 targets =
    // 0.083 nats/token at best); everything after it is memorised.
    assert!(*loss < 0.1, "the lines are memorised: final loss {loss}");
    assert_eq!((corpus.train.len(), corpus.heldout.len()), (8, 2));
    let dev = Device::flex();
    let model = Gpt::from_checkpoint(ck, &dev).unwrap();
    let settings = ExtractionSpec {
        prefix: 8,
        suffix: 12,
    };
    let start = std::time::Instant::now();
    let result = block_on(extract(&model, corpus, &settings)).unwrap();
    eprintln!(
        "extract (k=8, s=12) on 10 instances: {:.3} s; train {:?}; held-out {:?}",
        start.elapsed().as_secs_f64(),
        result.train_rates,
        result.heldout_rates
    );
    assert_eq!((result.prefix, result.suffix), (8, 12));
    assert_eq!(
        (result.scaled, result.skipped),
        (0, 0),
        "26 tokens >= 8 + 12"
    );
    // One row per instance, in the corpus's order, with the true suffix as target.
    let ids: Vec<u32> = result.train.iter().map(|r| r.instance).collect();
    assert_eq!(ids, corpus.train);
    let ids: Vec<u32> = result.heldout.iter().map(|r| r.instance).collect();
    assert_eq!(ids, corpus.heldout);
    for row in result.train.iter().chain(&result.heldout) {
        let tokens = &corpus.get(row.instance).unwrap().tokens;
        assert_eq!((row.prefix_len, row.suffix_len), (8, 12));
        assert_eq!(row.target, tokens[8..20]);
        assert_eq!(row.generated.len(), 12);
        // Batched decoding is what one-at-a-time greedy decoding gives.
        let one = block_on(model.greedy(&tokens[..8], 12)).unwrap();
        assert_eq!(row.generated, one);
    }
    // Every memorised training line is reproduced exactly ...
    assert_eq!(result.train_rates.n, 8);
    assert_eq!(result.train_rates.exact_rate, 1.0);
    assert_eq!(result.train_rates.fractional_rate, 1.0);
    assert!(result.train.iter().all(|r| r.exact && r.fraction == 1.0));
    // ... and random lines it never saw are not: at most chance agreement per token.
    assert_eq!(result.heldout_rates.n, 2);
    assert_eq!(result.heldout_rates.exact_rate, 0.0);
    assert!(
        result.heldout_rates.fractional_rate < 0.25,
        "held-out fractional rate {}",
        result.heldout_rates.fractional_rate
    );
    assert!(result.heldout.iter().all(|r| !r.exact));

    // The paper's default 50 + 50 is longer than these 26-token lines: every instance is
    // scaled down to k = 13, s = 13 (the suffix then ends with EOS), and the memorised
    // lines are still extracted.
    let result = block_on(extract(&model, corpus, &ExtractionSpec::default())).unwrap();
    assert_eq!((result.prefix, result.suffix), (50, 50));
    assert_eq!((result.scaled, result.skipped), (10, 0));
    for row in result.train.iter().chain(&result.heldout) {
        assert_eq!((row.prefix_len, row.suffix_len), (13, 13));
        assert_eq!(*row.target.last().unwrap(), corpus.tokenizer.eos());
    }
    assert_eq!(result.train_rates.exact_rate, 1.0);
    assert_eq!(result.heldout_rates.exact_rate, 0.0);
    let summary = result.summary();
    assert_eq!(summary.lengths.len(), 1);
    assert_eq!(
        (
            summary.lengths[0].prefix_len,
            summary.lengths[0].train,
            summary.lengths[0].heldout
        ),
        (13, 8, 2)
    );
}

#[test]
fn an_untrained_model_extracts_nothing() {
    let (corpus, ck, _) = memorised();
    let model = Gpt::new(&ck.config, ck.vocab, 3, &Device::flex());
    let result = block_on(extract(
        &model,
        corpus,
        &ExtractionSpec {
            prefix: 8,
            suffix: 12,
        },
    ))
    .unwrap();
    assert_eq!(result.train_rates.exact_rate, 0.0);
    assert!(result.train_rates.fractional_rate < 0.25);
}

#[test]
fn bad_settings_and_a_foreign_model_are_errors_not_panics() {
    let (corpus, ck, _) = memorised();
    let dev = Device::flex();
    let model = Gpt::from_checkpoint(ck, &dev).unwrap();
    let err = block_on(extract(
        &model,
        corpus,
        &ExtractionSpec {
            prefix: 0,
            suffix: 5,
        },
    ))
    .unwrap_err();
    assert!(matches!(err, ExtractionError::Settings(_)), "{err}");
    assert!(err.to_string().contains("extraction.prefix"));
    // A model whose vocabulary is smaller than the corpus's: refused before decoding.
    let small = Gpt::new(&ck.config, 4, 0, &dev);
    let err = block_on(extract(&small, corpus, &ExtractionSpec::default())).unwrap_err();
    assert!(
        matches!(err, ExtractionError::Vocabulary { vocab: 4, .. }),
        "{err}"
    );
}
