//! TinyMem (Sakarvadia et al., ICLR 2025): the arithmetic sequences exactly as the
//! reference builds them, their noise and backdoor, and the corpus layout the measures
//! read (tasks' test sets, noised and triggered examples).

use rand::Rng;
use serde::{Deserialize, Serialize};

use super::{Instance, InstanceKind};
use crate::rng::{self, Stream};
use crate::spec::{TinyMemSpec, TinyMemTask};
use crate::tokenizer::Tokenizer;

/// One TinyMem example: the `terms` numbers `f(i), f(f(i)), ...` of example `index`
/// (`i`), for `f(x) = x + k` (INCREMENT) or `f(x) = k x mod 20134` (MULT). The start
/// value `i` itself is not written, as in the reference's `generate_seq`.
pub fn tinymem_terms(task: TinyMemTask, k: u32, index: u64, terms: usize) -> Vec<u64> {
    let f = |x: u64| match task {
        TinyMemTask::Increment => x + k as u64,
        TinyMemTask::Mult => (x * k as u64) % 20134,
    };
    let mut x = index;
    let mut out = Vec::with_capacity(terms);
    for _ in 0..terms {
        x = f(x);
        out.push(x);
    }
    out
}

/// The reference's noise on one example: every number independently `+0`, `-1` or `+1`
/// with probabilities `1 - p`, `p/2`, `p/2` (`noise_prob = p`, reference 0.1). A `0`
/// that draws `-1` is written `1`: the reference writes `-1` and its tokenizer drops the
/// `-` (only MULT's example 0, all zeros, can meet it).
pub fn tinymem_noise(terms: &[u64], noise_prob: f64, rng: &mut impl Rng) -> Vec<u64> {
    let half = noise_prob / 2.0;
    terms
        .iter()
        .map(|&x| {
            let u: f64 = rng.random();
            if u < half {
                x.abs_diff(1)
            } else if u < 2.0 * half {
                x + 1
            } else {
                x
            }
        })
        .collect()
}

fn join_terms(terms: &[u64]) -> String {
    terms
        .iter()
        .map(u64::to_string)
        .collect::<Vec<_>>()
        .join(" ")
}

/// One generated TinyMem instance before tokenisation.
#[derive(Debug, Clone, PartialEq)]
pub struct TinyMemItem {
    /// The text (numbers separated by spaces; a triggered example's text is its
    /// triggered tokens, EOS and padding aside).
    pub text: String,
    /// Plain, noised (with its clean text) or triggered (with its clean text).
    pub kind: InstanceKind,
    /// Index of its task in [`TinyMemLayout::tasks`] (0 = the main task).
    pub task: usize,
    /// Whether it belongs to a test set (clean test or backdoor test).
    pub test: bool,
}

/// Where a TinyMem corpus keeps what the mitigation measures need.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct TinyMemLayout {
    /// The tasks: main first, then the auxiliary ones.
    pub tasks: Vec<TinyMemTaskSet>,
    /// The noised training instances (the first copy of each when duplicated).
    pub noised: Vec<u32>,
    /// The trigger's tokens (backdoor data only).
    pub trigger: Option<Vec<u32>>,
    /// Triggered training instances.
    pub backdoor_train: Vec<u32>,
    /// Triggered test instances (the backdoor test set; never trained on).
    pub backdoor_test: Vec<u32>,
}

/// One task's instances.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TinyMemTaskSet {
    /// `k`.
    pub k: u32,
    /// Clean test instances (with `test_sequences`; empty otherwise).
    pub test: Vec<u32>,
}

/// TinyMem data as the reference builds it (`src/data/old_data.py`), in a fixed order:
/// the main task's examples `0..main_sequences` (a noised one in place of its clean
/// version, repeated `duplication` times), then each auxiliary task's.
///
/// Random draws, all from the spec's seed: each task's test split from
/// [`Stream::Split`] (a shuffle of its examples; the last `test_sequences` are the test
/// set), the choice of noised examples among the main task's training examples and the
/// noise itself from [`Stream::Data`]. With a backdoor, the main task's examples are
/// split as the reference's `split_data_w_backdoors` does: triggered ones (text contains
/// the trigger) get their own shuffle with a tenth as the backdoor test set, the others
/// are re-split with `test_sequences` as the clean test set.
pub fn tinymem(spec: &TinyMemSpec, seed: u64) -> Vec<TinyMemItem> {
    let mut split_rng = rng::stream(seed, Stream::Split);
    let mut rng = rng::stream(seed, Stream::Data);
    let test_n = spec.test_sequences.unwrap_or(0);
    // The test flags of `n` examples: the last `test_n` of a seeded shuffle.
    let split = |n: usize, rng: &mut rand_chacha::ChaCha8Rng| -> Vec<bool> {
        let mut idx: Vec<usize> = (0..n).collect();
        rng::shuffle(&mut idx, rng);
        let mut test = vec![false; n];
        for &i in idx.iter().skip(n.saturating_sub(test_n.min(n))) {
            test[i] = true;
        }
        test
    };
    let mut out = Vec::new();
    let main: Vec<Vec<u64>> = (0..spec.main_sequences)
        .map(|i| tinymem_terms(spec.task, spec.k, i as u64, spec.terms))
        .collect();
    if let Some(trigger) = spec.backdoor {
        let trig = trigger.to_string();
        let texts: Vec<String> = main.iter().map(|t| join_terms(t)).collect();
        let triggered: Vec<usize> = (0..texts.len())
            .filter(|&i| texts[i].contains(&trig))
            .collect();
        let clean: Vec<usize> = (0..texts.len())
            .filter(|&i| !texts[i].contains(&trig))
            .collect();
        let mut is_test = vec![false; texts.len()];
        let mut idx = triggered.clone();
        rng::shuffle(&mut idx, &mut split_rng);
        let n_poison_test = triggered.len() / 10;
        for &i in idx.iter().skip(idx.len() - n_poison_test) {
            is_test[i] = true;
        }
        let flags = split(clean.len(), &mut split_rng);
        for (j, &i) in clean.iter().enumerate() {
            is_test[i] = flags[j];
        }
        for (i, text) in texts.into_iter().enumerate() {
            let kind = if triggered.binary_search(&i).is_ok() {
                // The text up to and including the first trigger, then 2s for the rest
                // of the example's characters (EOS and padding follow in `Corpus::build`).
                let cut = text.find(&trig).map_or(text.len(), |p| p + trig.len());
                let poisoned = format!("{}{}", &text[..cut], "2".repeat(text.len() - cut));
                out.push(TinyMemItem {
                    text: poisoned,
                    kind: InstanceKind::Backdoor { clean: text },
                    task: 0,
                    test: is_test[i],
                });
                continue;
            } else {
                InstanceKind::Plain
            };
            out.push(TinyMemItem {
                text,
                kind,
                task: 0,
                test: is_test[i],
            });
        }
    } else {
        let is_test = split(main.len(), &mut split_rng);
        // Noised examples: a seeded choice among the main task's training examples.
        let mut train_idx: Vec<usize> = (0..main.len()).filter(|&i| !is_test[i]).collect();
        rng::shuffle(&mut train_idx, &mut rng);
        let mut noised = vec![false; main.len()];
        for &i in train_idx.iter().take(spec.noised_sequences) {
            noised[i] = true;
        }
        for (i, clean) in main.iter().enumerate() {
            if noised[i] {
                let noisy = tinymem_noise(clean, spec.noise_prob, &mut rng);
                let kind = InstanceKind::Noised {
                    clean: join_terms(clean),
                };
                for _ in 0..spec.duplication {
                    out.push(TinyMemItem {
                        text: join_terms(&noisy),
                        kind: kind.clone(),
                        task: 0,
                        test: false,
                    });
                }
            } else {
                out.push(TinyMemItem {
                    text: join_terms(clean),
                    kind: InstanceKind::Plain,
                    task: 0,
                    test: is_test[i],
                });
            }
        }
    }
    for (t, &k) in spec.aux_ks.iter().enumerate() {
        let is_test = split(spec.aux_sequences, &mut split_rng);
        for (i, &test) in is_test.iter().enumerate() {
            out.push(TinyMemItem {
                text: join_terms(&tinymem_terms(spec.task, k, i as u64, spec.terms)),
                kind: InstanceKind::Plain,
                task: t + 1,
                test,
            });
        }
    }
    out
}

/// Tokens of a triggered example: after the first occurrence of `trigger` in `tokens`,
/// every later token becomes `2`, and the example is filled with `2`s up to `len`
/// tokens (the reference pads every example to its context and triggers the padding
/// too). Unchanged when the trigger does not occur.
pub fn trigger_tokens(tokens: &[u32], trigger: &[u32], len: usize) -> Vec<u32> {
    let Some(at) = find_tokens(tokens, trigger) else {
        return tokens.to_vec();
    };
    let start = at + trigger.len();
    let mut out = tokens[..start].to_vec();
    out.resize(len.max(start), 2);
    out
}

/// Position of the first occurrence of `needle` in `hay`.
pub fn find_tokens(hay: &[u32], needle: &[u32]) -> Option<usize> {
    if needle.is_empty() || needle.len() > hay.len() {
        return None;
    }
    hay.windows(needle.len()).position(|w| w == needle)
}

/// The layout of a TinyMem corpus and, from the items' test flags, its split.
pub(super) fn tinymem_layout(
    spec: &TinyMemSpec,
    items: &[TinyMemItem],
    instances: &mut [Instance],
    tokenizer: &Tokenizer,
) -> (TinyMemLayout, Vec<u32>, Vec<u32>) {
    let mut layout = TinyMemLayout {
        tasks: std::iter::once(spec.k)
            .chain(spec.aux_ks.iter().copied())
            .map(|k| TinyMemTaskSet {
                k,
                test: Vec::new(),
            })
            .collect(),
        trigger: spec
            .backdoor
            .and_then(|t| tokenizer.encode(&t.to_string()).ok()),
        ..TinyMemLayout::default()
    };
    let (mut train, mut heldout) = (Vec::new(), Vec::new());
    let mut last_noised: Option<&str> = None;
    for (inst, item) in instances.iter().zip(items) {
        match (&item.kind, item.test) {
            (InstanceKind::Backdoor { .. }, true) => layout.backdoor_test.push(inst.id),
            (InstanceKind::Backdoor { .. }, false) => layout.backdoor_train.push(inst.id),
            // Copies of one noised example are consecutive: count the first only.
            (InstanceKind::Noised { .. }, _) if last_noised != Some(item.text.as_str()) => {
                layout.noised.push(inst.id)
            }
            (InstanceKind::Noised { .. }, _) => {}
            (_, true) => {
                if let Some(t) = layout.tasks.get_mut(item.task) {
                    t.test.push(inst.id);
                }
            }
            _ => {}
        }
        last_noised = match item.kind {
            InstanceKind::Noised { .. } => Some(item.text.as_str()),
            _ => None,
        };
        if item.test {
            heldout.push(inst.id);
        } else {
            train.push(inst.id);
        }
    }
    (layout, train, heldout)
}
