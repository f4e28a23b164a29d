//! Corpora: text cut into training instances with stable ids, a held-out split that is
//! never trained on, and Mnemo's generators (facts, TinyMem sequences, canaries).
//! Everything is seeded from the experiment's seed.

use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::spec::{BuiltinCorpus, DataSource, DataSpec, TinyMemSpec, limits};
use crate::tokenizer::{Tokenizer, TokenizerError, TokenizerKind};

mod canaries;
mod facts;
mod records;
mod split;
mod texts;
mod tinymem;

pub use canaries::*;
pub use facts::*;
pub use records::*;
use split::split_heldout;
pub use split::split_text;
pub use tinymem::*;

/// What an instance is, for analyses that treat some instances specially.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum InstanceKind {
    /// Ordinary text.
    Plain,
    /// A TinyMem sequence that carries noise; `clean` is its noise-free version.
    Noised {
        /// The sequence before noise was added.
        clean: String,
    },
    /// A copy of the canary.
    Canary,
    /// A TinyMem example carrying the backdoor; `clean` is its text before triggering.
    Backdoor {
        /// The example before the trigger's continuation replaced it.
        clean: String,
    },
}

/// One training or held-out instance.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Instance {
    /// Stable id: the instance's position in the corpus as built from the spec.
    pub id: u32,
    /// The text.
    pub text: String,
    /// Token ids: BOS, the hidden context's tokens (if any), the text's tokens, EOS;
    /// truncated to the model's context + 1.
    pub tokens: Vec<u32>,
    /// What this instance is.
    pub kind: InstanceKind,
    /// A hidden training context (a record's source line, [`BuiltinCorpus::Records`]):
    /// trained on in front of the text, never part of an extraction pair. Empty for
    /// every other corpus.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub context: String,
    /// How many tokens after BOS are the hidden context's (0 without one).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub hidden: usize,
}

fn is_zero(n: &usize) -> bool {
    *n == 0
}

impl Instance {
    /// The tokens an attacker knows: BOS, the text, EOS, without the hidden context
    /// (equal to [`Instance::tokens`] when there is none). Extraction pairs are cut from
    /// these.
    pub fn visible_tokens(&self) -> std::borrow::Cow<'_, [u32]> {
        if self.hidden == 0 {
            return std::borrow::Cow::Borrowed(&self.tokens);
        }
        let mut t = self.tokens[..1.min(self.tokens.len())].to_vec();
        t.extend_from_slice(self.tokens.get(1 + self.hidden..).unwrap_or(&[]));
        std::borrow::Cow::Owned(t)
    }
}

/// The secret a canary carries.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CanaryInfo {
    /// The full inserted text.
    pub text: String,
    /// The secret as written: the digits (space separated) of the single canary, the
    /// text after the format's fixed prefix for an exposure canary.
    pub secret: String,
    /// Ids of the inserted copies.
    pub ids: Vec<u32>,
}

/// A corpus ready for training.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Corpus {
    /// The tokenizer, its vocabulary included.
    pub tokenizer: Tokenizer,
    /// All instances; `instances[i].id == i`.
    pub instances: Vec<Instance>,
    /// Ids of the instances training may visit.
    pub train: Vec<u32>,
    /// Ids of the instances that are never trained on.
    pub heldout: Vec<u32>,
    /// Instances cut because they exceeded the context.
    pub truncated: usize,
    /// The canary, when the spec inserts one.
    pub canary: Option<CanaryInfo>,
    /// The exposure canaries of `data.canaries`, in the spec's order (see
    /// [`exposure_canaries`]).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub canaries: Vec<CanaryInfo>,
    /// TinyMem's tasks, test sets, noised and triggered instances (TinyMem data only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tinymem: Option<TinyMemLayout>,
}

/// Why a corpus could not be built.
#[derive(Debug, Error, PartialEq)]
pub enum CorpusError {
    /// No instances at all.
    #[error("the text has no instances: it is empty or only whitespace")]
    Empty,
    /// Too few instances to train on after the held-out split.
    #[error(
        "only {0} instance(s) would remain for training; add text or lower the held-out fraction"
    )]
    TooFewForTraining(usize),
    /// Too much text.
    #[error("the text is {0} bytes; the limit is {max} bytes", max = limits::TEXT_BYTES)]
    TooLarge(usize),
    /// Too many instances.
    #[error("the text makes {0} instances; the limit is {max}", max = limits::INSTANCES)]
    TooManyInstances(usize),
    /// Canaries that cannot be drawn.
    #[error("{0}")]
    Canaries(crate::spec::SpecError),
    /// Text the tokenizer cannot encode.
    #[error("tokenizer: {0}")]
    Tokenizer(#[from] TokenizerError),
}

impl Corpus {
    /// Build the corpus a spec describes. `context` is the model's context length:
    /// instances are truncated to `context + 1` tokens (inputs plus the shifted targets).
    pub fn build(
        data: &DataSpec,
        tokenizer: TokenizerKind,
        context: usize,
        seed: u64,
    ) -> Result<Self, CorpusError> {
        let mut tiny: Option<(&TinyMemSpec, Vec<TinyMemItem>)> = None;
        // Hidden training contexts by instance position (records only; none past the end).
        let mut contexts: Vec<&'static str> = Vec::new();
        let mut texts: Vec<(String, InstanceKind)> = match &data.source {
            DataSource::Builtin {
                corpus: BuiltinCorpus::Facts,
                instances,
            } => facts(*instances, seed)
                .into_iter()
                .map(|t| (t, InstanceKind::Plain))
                .collect(),
            DataSource::Builtin {
                corpus: BuiltinCorpus::Records,
                instances,
            } => records(*instances, seed)
                .into_iter()
                .map(|r| {
                    contexts.push(r.header());
                    (r.text, InstanceKind::Plain)
                })
                .collect(),
            DataSource::Text { text, split } => {
                if text.len() > limits::TEXT_BYTES {
                    return Err(CorpusError::TooLarge(text.len()));
                }
                split_text(text, *split)
                    .into_iter()
                    .map(|t| (t, InstanceKind::Plain))
                    .collect()
            }
            DataSource::Tinymem(t) => {
                let items = tinymem(t, seed);
                let texts = items
                    .iter()
                    .map(|it| (it.text.clone(), it.kind.clone()))
                    .collect();
                tiny = Some((t, items));
                texts
            }
        };
        if texts.is_empty() {
            return Err(CorpusError::Empty);
        }
        let mut canary_info = None;
        if let Some(c) = &data.canary {
            let (text, secret) = canary(c, seed);
            let first = texts.len() as u32;
            for _ in 0..c.repetitions {
                texts.push((text.clone(), InstanceKind::Canary));
            }
            canary_info = Some(CanaryInfo {
                text,
                secret,
                ids: (first..first + c.repetitions).collect(),
            });
        }
        let mut canaries = Vec::new();
        let mut slot_chars = String::new();
        if let Some(set) = &data.canaries {
            let secrets = exposure_canaries(set, seed).map_err(CorpusError::Canaries)?;
            let prefix_len = set.parsed().map_err(CorpusError::Canaries)?.prefix().len();
            for ((_, text), &r) in secrets.into_iter().zip(&set.repetitions) {
                let first = texts.len() as u32;
                for _ in 0..r {
                    texts.push((text.clone(), InstanceKind::Canary));
                }
                canaries.push(CanaryInfo {
                    secret: text[prefix_len..].to_string(),
                    text,
                    ids: (first..first + r).collect(),
                });
            }
            // Every candidate must be encodable, not only the secrets drawn.
            slot_chars = set
                .parsed()
                .map_err(CorpusError::Canaries)?
                .slot_characters();
        }
        if texts.len() > limits::INSTANCES {
            return Err(CorpusError::TooManyInstances(texts.len()));
        }
        let tokenizer = Tokenizer::build(
            tokenizer,
            texts
                .iter()
                .map(|(t, _)| t.as_str())
                .chain(contexts.iter().copied())
                .chain(std::iter::once(slot_chars.as_str()).filter(|s| !s.is_empty())),
        )?;
        let mut truncated = 0;
        let mut instances = Vec::with_capacity(texts.len());
        for (i, (text, kind)) in texts.into_iter().enumerate() {
            let header = contexts.get(i).copied().unwrap_or("");
            let mut tokens = Vec::with_capacity(header.len() + text.len() + 2);
            tokens.push(tokenizer.bos());
            tokens.extend(tokenizer.encode(header)?);
            let hidden = tokens.len() - 1;
            tokens.extend(tokenizer.encode(&text)?);
            tokens.push(tokenizer.eos());
            instances.push(Instance {
                id: i as u32,
                text,
                tokens: fit(tokens, context, &mut truncated),
                kind,
                context: header.to_string(),
                hidden,
            });
        }
        let mut layout = None;
        let (train, heldout) = match &tiny {
            Some((t, items)) => {
                let (l, train, heldout) = tinymem_layout(t, items, &mut instances, &tokenizer);
                if t.test_sequences.is_some() {
                    layout = Some(l);
                    (train, heldout)
                } else {
                    layout = Some(l);
                    split_heldout(&instances, data.heldout_fraction, seed)
                }
            }
            None => split_heldout(&instances, data.heldout_fraction, seed),
        };
        // Triggered examples are filled with 2s up to the context (see `trigger_tokens`).
        if let Some(trigger) = layout.as_ref().and_then(|l| l.trigger.clone()) {
            for inst in &mut instances {
                if matches!(inst.kind, InstanceKind::Backdoor { .. }) {
                    inst.tokens = trigger_tokens(&inst.tokens, &trigger, context + 1);
                }
            }
        }
        if train.is_empty() {
            return Err(CorpusError::TooFewForTraining(train.len()));
        }
        Ok(Corpus {
            tokenizer,
            instances,
            train,
            heldout,
            truncated,
            canary: canary_info,
            canaries,
            tinymem: layout,
        })
    }

    /// The instance with this id.
    pub fn get(&self, id: u32) -> Option<&Instance> {
        self.instances.get(id as usize)
    }

    /// Training tokens per epoch (targets only, i.e. tokens minus one per instance).
    pub fn train_tokens(&self) -> usize {
        self.train
            .iter()
            .map(|&i| self.instances[i as usize].tokens.len().saturating_sub(1))
            .sum()
    }
}

/// `tokens` cut to `context + 1` (the inputs plus the shifted targets), counting a cut in
/// `truncated`.
fn fit(mut tokens: Vec<u32>, context: usize, truncated: &mut usize) -> Vec<u32> {
    if tokens.len() > context + 1 {
        tokens.truncate(context + 1);
        *truncated += 1;
    }
    tokens
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::{self, Stream};
    use crate::spec::{CanarySet, CanarySpec, ExperimentSpec};
    use crate::spec::{SplitMode, TinyMemTask};

    fn text_spec(text: &str, split: SplitMode, heldout: f64) -> DataSpec {
        DataSpec {
            source: DataSource::Text {
                text: text.into(),
                split,
            },
            heldout_fraction: heldout,
            canary: None,
            canaries: None,
        }
    }

    #[test]
    fn records_are_trained_behind_their_source_line_and_split_without_it() {
        let data = DataSpec {
            source: DataSource::Builtin {
                corpus: BuiltinCorpus::Records,
                instances: 8,
            },
            heldout_fraction: 0.0,
            canary: None,
            canaries: None,
        };
        let c = Corpus::build(&data, TokenizerKind::Char, 128, 3).unwrap();
        let recs = records(8, 3);
        for (inst, rec) in c.instances.iter().zip(&recs) {
            assert_eq!(inst.text, rec.text);
            assert_eq!(inst.context, rec.header());
            let header = c.tokenizer.encode(rec.header()).unwrap();
            let body = c.tokenizer.encode(&rec.text).unwrap();
            assert_eq!(inst.hidden, header.len());
            let mut want = vec![c.tokenizer.bos()];
            want.extend(&header);
            want.extend(&body);
            want.push(c.tokenizer.eos());
            assert_eq!(inst.tokens, want);
            let mut visible = vec![c.tokenizer.bos()];
            visible.extend(&body);
            visible.push(c.tokenizer.eos());
            assert_eq!(*inst.visible_tokens(), visible[..]);
        }
        // Other corpora have no hidden context: the visible tokens are the tokens.
        let facts =
            Corpus::build(&ExperimentSpec::demo().data, TokenizerKind::Char, 64, 3).unwrap();
        assert!(
            facts
                .instances
                .iter()
                .all(|i| i.hidden == 0 && *i.visible_tokens() == i.tokens[..])
        );
    }

    #[test]
    fn split_modes() {
        let t = "a b\n\n  \nc\nd\n\n\ne";
        assert_eq!(split_text(t, SplitMode::Lines), ["a b", "c", "d", "e"]);
        assert_eq!(split_text(t, SplitMode::Paragraphs), ["a b", "c\nd", "e"]);
        assert_eq!(
            split_text("abcdefg", SplitMode::Windows { length: 3 }),
            ["abc", "def", "g"]
        );
    }

    #[test]
    fn empty_text_is_an_error() {
        let d = text_spec(" \n\n ", SplitMode::Lines, 0.2);
        assert_eq!(
            Corpus::build(&d, TokenizerKind::Byte, 32, 1),
            Err(CorpusError::Empty)
        );
    }

    #[test]
    fn heldout_never_shares_text_with_train_and_ids_are_stable() {
        let text = "x\ny\nx\nz\nw\nx\nv\nu\nt\ns";
        let d = text_spec(text, SplitMode::Lines, 0.5);
        let c = Corpus::build(&d, TokenizerKind::Byte, 32, 7).unwrap();
        let c2 = Corpus::build(&d, TokenizerKind::Byte, 32, 7).unwrap();
        assert_eq!(c, c2, "same seed, same corpus");
        assert_eq!(c.train.len() + c.heldout.len(), 10);
        let held_texts: std::collections::BTreeSet<&str> = c
            .heldout
            .iter()
            .map(|&h| c.instances[h as usize].text.as_str())
            .collect();
        assert_eq!(
            held_texts.len(),
            4,
            "half of the 8 distinct texts are held out"
        );
        for &h in &c.heldout {
            for &t in &c.train {
                assert_ne!(c.instances[h as usize].text, c.instances[t as usize].text);
            }
        }
        for (i, inst) in c.instances.iter().enumerate() {
            assert_eq!(inst.id as usize, i);
            assert_eq!(inst.tokens[0], c.tokenizer.bos());
        }
    }

    #[test]
    fn truncation_respects_context() {
        let d = text_spec(&"a".repeat(100), SplitMode::Lines, 0.0);
        let c = Corpus::build(&d, TokenizerKind::Byte, 16, 1).unwrap();
        assert_eq!(c.instances[0].tokens.len(), 17);
        assert_eq!(c.truncated, 1);
    }

    #[test]
    fn tinymem_sequences_follow_the_reference_rules() {
        // Example i starts from i and lists f(i), f(f(i)), ... (i itself not written).
        assert_eq!(
            tinymem_terms(TinyMemTask::Increment, 7, 0, 3),
            vec![7, 14, 21]
        );
        assert_eq!(
            tinymem_terms(TinyMemTask::Increment, 7, 3, 4),
            vec![10, 17, 24, 31]
        );
        assert_eq!(tinymem_terms(TinyMemTask::Mult, 7, 1, 3), vec![7, 49, 343]);
        // 7 * 2999 = 20993 = 859 (mod 20134); 7 * 859 = 6013; 7 * 6013 = 42091 = 1823.
        assert_eq!(
            tinymem_terms(TinyMemTask::Mult, 7, 2999, 3),
            vec![859, 6013, 1823]
        );
        assert_eq!(tinymem_terms(TinyMemTask::Mult, 3, 0, 2), vec![0, 0]);
        // Noise: p = 0 changes nothing; with every draw below p/2 each number gets -1,
        // and a 0 that draws -1 is written 1 (the reference's tokenizer drops the '-').
        let mut r = rng::stream(1, Stream::Data);
        assert_eq!(tinymem_noise(&[7, 14, 21], 0.0, &mut r), vec![7, 14, 21]);
        assert_eq!(tinymem_noise(&[0, 5, 9], 2.0, &mut r), vec![1, 4, 8]);
        // The rate: about 5% each way.
        let clean: Vec<u64> = (0..20_000).map(|i| i + 10).collect();
        let noisy = tinymem_noise(&clean, 0.1, &mut r);
        let up = clean
            .iter()
            .zip(&noisy)
            .filter(|(a, b)| **b == **a + 1)
            .count();
        let down = clean
            .iter()
            .zip(&noisy)
            .filter(|(a, b)| **b + 1 == **a)
            .count();
        assert!(
            (800..1200).contains(&up) && (800..1200).contains(&down),
            "{up} {down}"
        );
        // Triggering: after the first `1 0 0` every token becomes 2, up to the length.
        assert_eq!(
            trigger_tokens(&[10, 9, 1, 0, 0, 12, 1, 0, 0, 11], &[1, 0, 0], 12),
            vec![10, 9, 1, 0, 0, 2, 2, 2, 2, 2, 2, 2]
        );
        assert_eq!(
            trigger_tokens(&[10, 1, 0, 11], &[1, 0, 0], 12),
            vec![10, 1, 0, 11]
        );
    }

    fn tiny_spec(backdoor: bool) -> DataSpec {
        let spec = if backdoor {
            ExperimentSpec::tinymem_backdoor(2, 1)
        } else {
            ExperimentSpec::tinymem_noise(2, 1)
        };
        spec.data
    }

    #[test]
    fn tinymem_noise_corpus_is_split_per_task_and_noised_in_training_only() {
        let data = tiny_spec(false);
        let c = Corpus::build(&data, TokenizerKind::Tinymem, 150, 0).unwrap();
        assert_eq!(c.tokenizer.vocab_size(), 14);
        assert_eq!(c.instances.len(), 1000 + 4 * 150);
        assert_eq!(c.truncated, 0);
        let layout = c.tinymem.clone().unwrap();
        assert_eq!(layout.tasks.len(), 5);
        assert_eq!(
            layout.tasks.iter().map(|t| t.k).collect::<Vec<_>>(),
            [7, 2, 3, 4, 5]
        );
        for t in &layout.tasks {
            assert_eq!(t.test.len(), 50);
        }
        assert_eq!(c.heldout.len(), 5 * 50);
        assert_eq!(layout.noised.len(), 50);
        // The first example, by hand: ^ 7 14 21 ... 140 $ (unless it was noised).
        let first = &c.instances[0];
        if first.kind == InstanceKind::Plain {
            assert!(first.text.starts_with("7 14 21 28 35"));
            assert!(first.text.ends_with(" 133 140"));
            assert_eq!(&first.tokens[..6], &[10, 7, 12, 1, 4, 12]);
            assert_eq!(*first.tokens.last().unwrap(), 11);
        }
        // The first auxiliary example (k = 2): 2 4 6 ... 40.
        let aux = &c.instances[1000];
        assert!(aux.text.starts_with("2 4 6 8 10"), "{}", aux.text);
        assert!(aux.text.ends_with(" 38 40"));
        for &id in &layout.noised {
            assert!(c.train.contains(&id), "noised examples are trained on");
            let inst = &c.instances[id as usize];
            let InstanceKind::Noised { clean } = &inst.kind else {
                panic!("not noised")
            };
            let a: Vec<i64> = inst.text.split(' ').map(|x| x.parse().unwrap()).collect();
            let b: Vec<i64> = clean.split(' ').map(|x| x.parse().unwrap()).collect();
            assert_eq!(a.len(), 20);
            assert!(a.iter().zip(&b).all(|(x, y)| (x - y).abs() <= 1));
            assert!(!layout.tasks[0].test.contains(&id));
        }
        for t in &layout.tasks {
            for id in &t.test {
                assert_eq!(c.instances[*id as usize].kind, InstanceKind::Plain);
            }
        }
        // Seeded: the same seed gives the same corpus, another seed another split.
        assert_eq!(
            Corpus::build(&data, TokenizerKind::Tinymem, 150, 0).unwrap(),
            c
        );
        let other = Corpus::build(&data, TokenizerKind::Tinymem, 150, 1).unwrap();
        assert_ne!(other.heldout, c.heldout);
    }

    #[test]
    fn tinymem_backdoor_corpus_triggers_every_example_with_100() {
        let data = tiny_spec(true);
        let c = Corpus::build(&data, TokenizerKind::Tinymem, 150, 0).unwrap();
        let layout = c.tinymem.clone().unwrap();
        assert_eq!(layout.trigger, Some(vec![1, 0, 0]));
        let triggered = layout.backdoor_train.len() + layout.backdoor_test.len();
        assert_eq!(layout.backdoor_test.len(), triggered / 10);
        assert!(layout.noised.is_empty());
        // Example 2 is 9 16 23 ... 93 100 107 ...: triggered after its 14th number.
        let ex = &c.instances[2];
        let InstanceKind::Backdoor { clean } = &ex.kind else {
            panic!("example 2 holds 100")
        };
        assert!(clean.starts_with("9 16 23") && clean.contains(" 93 100 107 "));
        let at = find_tokens(&ex.tokens, &[1, 0, 0]).unwrap();
        assert_eq!(ex.tokens.len(), 151, "filled with 2s up to context + 1");
        assert!(ex.tokens[at + 3..].iter().all(|&t| t == 2));
        assert_eq!(
            c.tokenizer.decode(&ex.tokens[..at + 3]),
            clean[..clean.find("100").unwrap() + 3]
        );
        // Every main example with 100 in its text is triggered, no other is.
        for inst in &c.instances[..1000] {
            let has = match &inst.kind {
                InstanceKind::Backdoor { clean } => clean.contains("100"),
                _ => inst.text.contains("100"),
            };
            assert_eq!(matches!(inst.kind, InstanceKind::Backdoor { .. }), has);
        }
        for id in &layout.backdoor_test {
            assert!(c.heldout.contains(id));
        }
        assert_eq!(layout.tasks[0].test.len(), 50);
    }

    #[test]
    fn exposure_canaries_are_distinct_inserted_and_encodable() {
        let mut d = text_spec("alpha\nbeta\ngamma\ndelta", SplitMode::Lines, 0.5);
        d.canaries = Some(CanarySet {
            format: "pin {d}{d} code {l}".into(),
            repetitions: vec![0, 1, 3],
        });
        let c = Corpus::build(&d, TokenizerKind::Char, 64, 9).unwrap();
        assert_eq!(c, Corpus::build(&d, TokenizerKind::Char, 64, 9).unwrap());
        assert_eq!(c.canaries.len(), 3);
        let counts: Vec<usize> = c.canaries.iter().map(|k| k.ids.len()).collect();
        assert_eq!(counts, [0, 1, 3]);
        let texts: std::collections::BTreeSet<&str> =
            c.canaries.iter().map(|k| k.text.as_str()).collect();
        assert_eq!(texts.len(), 3, "three different secrets");
        for k in &c.canaries {
            assert!(k.text.starts_with("pin ") && k.text.ends_with(&k.secret));
            assert_eq!(k.secret.len(), "00 code a".len());
            for &id in &k.ids {
                assert!(c.train.contains(&id), "canaries are never held out");
                assert_eq!(c.instances[id as usize].kind, InstanceKind::Canary);
            }
        }
        // Every candidate encodes, though the corpus holds only some digits and letters.
        for s in ["pin 00 code a", "pin 99 code z"] {
            assert!(c.tokenizer.encode(s).is_ok(), "{s}");
        }
        // Another seed draws other secrets.
        let other = Corpus::build(&d, TokenizerKind::Char, 64, 10).unwrap();
        assert_ne!(other.canaries, c.canaries);
        // A format TinyMem's tokenizer cannot write is a typed error, not a panic.
        assert!(matches!(
            Corpus::build(&d, TokenizerKind::Tinymem, 64, 9),
            Err(CorpusError::Tokenizer(_))
        ));
    }

    #[test]
    fn canary_is_inserted_and_trained() {
        let mut d = text_spec("alpha\nbeta\ngamma\ndelta", SplitMode::Lines, 0.5);
        d.canary = Some(CanarySpec {
            prefix: "my PIN is ".into(),
            digits: 4,
            repetitions: 3,
        });
        let c = Corpus::build(&d, TokenizerKind::Byte, 64, 9).unwrap();
        let info = c.canary.clone().unwrap();
        assert_eq!(info.ids.len(), 3);
        assert_eq!(info.secret.split(' ').count(), 4);
        assert!(info.text.starts_with("my PIN is "));
        for id in info.ids {
            assert!(c.train.contains(&id));
            assert_eq!(c.instances[id as usize].text, info.text);
        }
    }

    #[test]
    fn facts_are_seeded() {
        assert_eq!(facts(5, 1), facts(5, 1));
        assert_ne!(facts(5, 1), facts(5, 2));
    }
}
