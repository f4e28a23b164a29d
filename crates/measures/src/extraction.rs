//! Extraction (METHODS.md section 3, after Carlini et al., ICLR 2023): split a sequence
//! into a prefix of `k` tokens and the suffix of the next `s` tokens; the sequence is
//! *extracted* when greedy decoding from the prefix reproduces the suffix exactly.
//!
//! Choices written down here:
//! - The sequence is the instance's token ids as trained on: BOS, the text's tokens and
//!   EOS, truncated to the model's context + 1. The prefix therefore starts with BOS (the
//!   model never saw a sequence without it), and a suffix that reaches the end of a
//!   sequence ends with EOS. Tokens past `k + s` are not used. An instance trained behind
//!   a hidden context (the records corpus) is split without it
//!   ([`mnemo_core::corpus::Instance::visible_tokens`]): BOS, then the text.
//! - Sequences shorter than `k + s` have both lengths scaled down proportionally (see
//!   [`split_lengths`]) and are counted in [`ExtractionResult::scaled`]; sequences of
//!   fewer than two tokens cannot be split and are counted in
//!   [`ExtractionResult::skipped`].
//! - Every training instance is evaluated, once per id: copies of one text (duplicates,
//!   canary copies) are separate rows with identical results. Every held-out instance is
//!   evaluated too: it is the baseline, what the model reproduces without having trained
//!   on it.
//! - The *fractional* rate is token-weighted: matched suffix tokens over all suffix tokens
//!   (so longer suffixes weigh more when lengths were scaled down). The mean of the
//!   per-instance fractions is the histogram's mean, not this rate.

use std::collections::BTreeMap;

use mnemo_core::spec::{ExtractionSpec, SpecError};
use mnemo_core::{Corpus, Gpt};
use serde::{Deserialize, Serialize};
use thiserror::Error;

/// Most prefixes decoded in one batch (one forward pass per generated token).
pub const MAX_BATCH: usize = 64;

/// Why extraction could not be measured.
#[derive(Debug, Error)]
pub enum ExtractionError {
    /// The prefix or suffix length is outside its limits.
    #[error("extraction settings: {0}")]
    Settings(#[from] SpecError),
    /// The corpus lists an id it has no instance for.
    #[error("instance {0} is listed in the corpus split but does not exist")]
    MissingInstance(u32),
    /// An instance holds a token the model's vocabulary does not have: the model was
    /// trained on another corpus.
    #[error(
        "instance {instance} holds token {token}, outside the model's vocabulary of {vocab}: the model was not trained on this corpus"
    )]
    Vocabulary {
        /// The instance.
        instance: u32,
        /// The token id.
        token: u32,
        /// The model's vocabulary size.
        vocab: usize,
    },
    /// Reading generated tokens back from the device failed.
    #[error("decoding failed on the device: {0}")]
    Device(String),
}

/// The prefix and suffix lengths `(k, s)` used for a sequence of `n_tokens` tokens when
/// `prefix` + `suffix` are requested: the request itself when the sequence is long enough
/// (`n_tokens >= prefix + suffix`), otherwise both scaled down proportionally,
/// `k = floor(n * prefix / (prefix + suffix))` (at least 1) and `s = n - k` (at least 1).
/// The prefix is the first `k` tokens and the suffix the next `s`.
///
/// `None` when the sequence has fewer than two tokens, or when either requested length
/// is 0 (there would be nothing to condition on or nothing to reproduce).
pub fn split_lengths(n_tokens: usize, prefix: usize, suffix: usize) -> Option<(usize, usize)> {
    if n_tokens < 2 || prefix == 0 || suffix == 0 {
        return None;
    }
    let requested = prefix.checked_add(suffix)?;
    if n_tokens >= requested {
        return Some((prefix, suffix));
    }
    // n < prefix + suffix, so the product fits in u128 and k < n.
    let k = (n_tokens as u128 * prefix as u128 / requested as u128) as usize;
    let k = k.clamp(1, n_tokens - 1);
    Some((k, n_tokens - k))
}

/// The outcome of one instance.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ExtractionRow {
    /// Instance id.
    pub instance: u32,
    /// Prefix length `k` used.
    pub prefix_len: usize,
    /// Suffix length `s` used.
    pub suffix_len: usize,
    /// Whether the whole suffix was reproduced.
    pub exact: bool,
    /// Share of suffix positions where the generated token equals the true one.
    pub fraction: f64,
    /// The true suffix.
    pub target: Vec<u32>,
    /// The greedy continuation of the prefix (as long as the suffix).
    pub generated: Vec<u32>,
}

impl ExtractionRow {
    /// Score `generated` against `target` position by position. `exact` needs both to be
    /// equal (and non-empty); `fraction` is matched positions over `target.len()` (0 for
    /// an empty target). A shorter `generated` counts its missing positions as misses.
    pub fn score(instance: u32, prefix_len: usize, target: Vec<u32>, generated: Vec<u32>) -> Self {
        let matched = matches(&target, &generated);
        let fraction = if target.is_empty() {
            0.0
        } else {
            matched as f64 / target.len() as f64
        };
        ExtractionRow {
            instance,
            prefix_len,
            suffix_len: target.len(),
            exact: !target.is_empty() && target == generated,
            fraction,
            target,
            generated,
        }
    }

    /// Suffix positions reproduced.
    pub fn matched(&self) -> usize {
        matches(&self.target, &self.generated)
    }
}

fn matches(target: &[u32], generated: &[u32]) -> usize {
    target.iter().zip(generated).filter(|(a, b)| a == b).count()
}

/// Extraction rates over a set of instances.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct ExtractionRates {
    /// Instances evaluated.
    pub n: usize,
    /// Share of instances whose suffix was reproduced exactly (0 when `n` is 0).
    pub exact_rate: f64,
    /// Token-weighted share of suffix tokens reproduced: matched suffix tokens over all
    /// suffix tokens of the instances, position by position (0 when there are none).
    pub fractional_rate: f64,
}

impl ExtractionRates {
    /// The rates of `rows`. With no rows (or no suffix tokens) the rates are 0, never NaN.
    pub fn of(rows: &[ExtractionRow]) -> Self {
        let n = rows.len();
        let exact = rows.iter().filter(|r| r.exact).count();
        let matched: usize = rows.iter().map(ExtractionRow::matched).sum();
        let total: usize = rows.iter().map(|r| r.target.len()).sum();
        ExtractionRates {
            n,
            exact_rate: if n == 0 { 0.0 } else { exact as f64 / n as f64 },
            fractional_rate: if total == 0 {
                0.0
            } else {
                matched as f64 / total as f64
            },
        }
    }
}

/// Extraction measured on a model: every training instance and every held-out one.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ExtractionResult {
    /// Requested prefix length `k`.
    pub prefix: usize,
    /// Requested suffix length `s`.
    pub suffix: usize,
    /// One row per training instance, in the corpus's training order.
    pub train: Vec<ExtractionRow>,
    /// One row per held-out instance (the baseline: never trained on).
    pub heldout: Vec<ExtractionRow>,
    /// Rates over `train`.
    pub train_rates: ExtractionRates,
    /// Rates over `heldout`.
    pub heldout_rates: ExtractionRates,
    /// Instances (both splits) whose lengths were scaled down because they are shorter
    /// than `prefix + suffix`.
    pub scaled: usize,
    /// Instances (both splits) too short to split (fewer than two tokens): not evaluated.
    pub skipped: usize,
}

/// How many instances used one `(prefix_len, suffix_len)` pair.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct LengthsUsed {
    /// Prefix length `k`.
    pub prefix_len: usize,
    /// Suffix length `s`.
    pub suffix_len: usize,
    /// Training instances with these lengths.
    pub train: usize,
    /// Held-out instances with these lengths.
    pub heldout: usize,
}

/// The numbers of an [`ExtractionResult`] without its rows: requested lengths, rates,
/// and the lengths actually used.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ExtractionSummary {
    /// Requested prefix length `k`.
    pub prefix: usize,
    /// Requested suffix length `s`.
    pub suffix: usize,
    /// Rates over the training instances.
    pub train_rates: ExtractionRates,
    /// Rates over the held-out instances.
    pub heldout_rates: ExtractionRates,
    /// Instances whose lengths were scaled down.
    pub scaled: usize,
    /// Instances too short to split.
    pub skipped: usize,
    /// Every `(k, s)` used, with its instance counts, shortest prefix first.
    pub lengths: Vec<LengthsUsed>,
}

impl ExtractionResult {
    /// The summary of this result.
    pub fn summary(&self) -> ExtractionSummary {
        let mut lengths: BTreeMap<(usize, usize), (usize, usize)> = BTreeMap::new();
        for r in &self.train {
            lengths.entry((r.prefix_len, r.suffix_len)).or_default().0 += 1;
        }
        for r in &self.heldout {
            lengths.entry((r.prefix_len, r.suffix_len)).or_default().1 += 1;
        }
        ExtractionSummary {
            prefix: self.prefix,
            suffix: self.suffix,
            train_rates: self.train_rates,
            heldout_rates: self.heldout_rates,
            scaled: self.scaled,
            skipped: self.skipped,
            lengths: lengths
                .into_iter()
                .map(|((prefix_len, suffix_len), (train, heldout))| LengthsUsed {
                    prefix_len,
                    suffix_len,
                    train,
                    heldout,
                })
                .collect(),
        }
    }
}

/// One instance to decode: where its row goes, its prefix and its true suffix.
struct Job {
    heldout: bool,
    slot: usize,
    instance: u32,
    prefix: Vec<u32>,
    target: Vec<u32>,
}

/// Measure extraction on every training and every held-out instance of `corpus`:
/// greedy decoding from each prefix for as many tokens as its suffix. Instances with one
/// prefix length decode together (for their longest suffix, then cut), in batches of at
/// most [`MAX_BATCH`] prefixes.
pub async fn extract(
    model: &Gpt,
    corpus: &Corpus,
    settings: &ExtractionSpec,
) -> Result<ExtractionResult, ExtractionError> {
    settings.validate()?;
    let vocab = model.vocab_size();
    let requested = settings.prefix + settings.suffix;
    let (mut scaled, mut skipped) = (0, 0);
    let mut groups: BTreeMap<(usize, usize), Vec<Job>> = BTreeMap::new();
    let mut train_slots: Vec<Option<ExtractionRow>> = Vec::new();
    let mut held_slots: Vec<Option<ExtractionRow>> = Vec::new();
    for (heldout, ids) in [(false, &corpus.train), (true, &corpus.heldout)] {
        for &id in ids {
            let inst = corpus.get(id).ok_or(ExtractionError::MissingInstance(id))?;
            if let Some(&token) = inst.tokens.iter().find(|&&t| t as usize >= vocab) {
                return Err(ExtractionError::Vocabulary {
                    instance: id,
                    token,
                    vocab,
                });
            }
            let tokens = inst.visible_tokens();
            let Some((k, s)) = split_lengths(tokens.len(), settings.prefix, settings.suffix) else {
                skipped += 1;
                continue;
            };
            if tokens.len() < requested {
                scaled += 1;
            }
            let slots = if heldout {
                &mut held_slots
            } else {
                &mut train_slots
            };
            groups.entry((k, s)).or_default().push(Job {
                heldout,
                slot: slots.len(),
                instance: id,
                prefix: tokens[..k].to_vec(),
                target: tokens[k..k + s].to_vec(),
            });
            slots.push(None);
        }
    }
    // Decode every group of one prefix length together, for as many tokens as its
    // longest suffix: greedy decoding is deterministic per row, so the first `s` tokens
    // of a longer continuation are the continuation of length `s`. Far fewer groups
    // (and forward passes) than one per (k, s).
    let mut by_prefix: BTreeMap<usize, Vec<Job>> = BTreeMap::new();
    for ((k, _), jobs) in groups {
        by_prefix.entry(k).or_default().extend(jobs);
    }
    for (k, jobs) in by_prefix {
        for chunk in jobs.chunks(MAX_BATCH) {
            let n = chunk.iter().map(|j| j.target.len()).max().unwrap_or(0);
            let prompts: Vec<Vec<u32>> = chunk.iter().map(|j| j.prefix.clone()).collect();
            let generated = model
                .greedy_batch(&prompts, n)
                .await
                .map_err(|e| ExtractionError::Device(format!("{e:?}")))?;
            for (job, mut generated) in chunk.iter().zip(generated) {
                generated.truncate(job.target.len());
                let row = ExtractionRow::score(job.instance, k, job.target.clone(), generated);
                let slots = if job.heldout {
                    &mut held_slots
                } else {
                    &mut train_slots
                };
                if let Some(slot) = slots.get_mut(job.slot) {
                    *slot = Some(row);
                }
            }
        }
    }
    let train: Vec<ExtractionRow> = train_slots.into_iter().flatten().collect();
    let heldout: Vec<ExtractionRow> = held_slots.into_iter().flatten().collect();
    Ok(ExtractionResult {
        prefix: settings.prefix,
        suffix: settings.suffix,
        train_rates: ExtractionRates::of(&train),
        heldout_rates: ExtractionRates::of(&heldout),
        train,
        heldout,
        scaled,
        skipped,
    })
}

/// The per-instance table as CSV, header `instance,prefix_len,suffix_len,exact,fraction`
/// (`exact` is `true`/`false`, `fraction` the share of suffix positions reproduced).
pub fn extraction_csv(rows: &[ExtractionRow]) -> Result<String, csv::Error> {
    let mut w = csv::Writer::from_writer(Vec::new());
    w.write_record(["instance", "prefix_len", "suffix_len", "exact", "fraction"])?;
    for r in rows {
        w.write_record([
            r.instance.to_string(),
            r.prefix_len.to_string(),
            r.suffix_len.to_string(),
            r.exact.to_string(),
            r.fraction.to_string(),
        ])?;
    }
    let bytes = w.into_inner().map_err(|e| e.into_error())?;
    Ok(String::from_utf8_lossy(&bytes).into_owned())
}
