//! Training and test pairs: the prefix and suffix lengths that fit each text, and the
//! seeded split of the texts into the pairs prompts train on and the pairs they are
//! measured on.

use super::*;

/// One (prefix, suffix) pair.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Pair {
    /// The training instance it was cut from.
    pub instance: u32,
    /// The first `k` tokens (BOS first).
    pub prefix: Vec<u32>,
    /// The next `s` tokens.
    pub suffix: Vec<u32>,
}

/// Lengths after fitting the window (see [`fit_lengths`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct FittedLengths {
    /// Constant prompt length `L` used.
    pub prompt_len: usize,
    /// Prefix length `k` used for sequences long enough.
    pub prefix: usize,
    /// Suffix length `s` used for sequences long enough.
    pub suffix: usize,
    /// Whether any of the three was reduced to fit the context.
    pub clamped: bool,
}

/// Fit `[prompt ; prefix ; suffix]` into a context of `context` positions: the constant
/// prompt is clamped to `context - 1`, then the largest `(k, s)` that [`split_lengths`]
/// gives for a total of at most `prefix + suffix` tokens with
/// `max(L, k) + k + s <= context + 1` (the dynamic prompt is `k` long; the last suffix
/// token is never an input). `None` when a length is 0 or the context is below 3.
pub fn fit_lengths(
    context: usize,
    prompt_len: usize,
    prefix: usize,
    suffix: usize,
) -> Option<FittedLengths> {
    if context < 3 || prompt_len == 0 || prefix == 0 || suffix == 0 {
        return None;
    }
    let l = prompt_len.min(context - 1);
    let total = prefix.checked_add(suffix)?;
    // The requested total first, then ever shorter totals; (1, 1) always fits.
    let (k, s) = (2..=total).rev().find_map(|t| {
        let (k, s) = split_lengths(t, prefix, suffix)?;
        (l.max(k) + k + s <= context + 1).then_some((k, s))
    })?;
    Some(FittedLengths {
        prompt_len: l,
        prefix: k,
        suffix: s,
        clamped: (l, k, s) != (prompt_len, prefix, suffix),
    })
}

/// How many pairs used one `(k, s)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct PairLengths {
    /// Prefix length.
    pub prefix_len: usize,
    /// Suffix length.
    pub suffix_len: usize,
    /// Training pairs with these lengths.
    pub train: usize,
    /// Test pairs with these lengths.
    pub test: usize,
}

/// The pairs of an experiment, split into prompt-training and test pairs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PairSet {
    /// Lengths used.
    pub lengths: FittedLengths,
    /// Pairs that train the prompts.
    pub train: Vec<Pair>,
    /// Held-out pairs on which the three methods are measured.
    pub test: Vec<Pair>,
    /// Pairs split in proportion because their instance is shorter than `k + s`.
    pub scaled: usize,
    /// Training instances too short to split (fewer than 2 tokens).
    pub skipped: usize,
    /// Training instances left out as copies of an earlier text.
    pub duplicates: usize,
    /// Seed of the prompt-training data order (drawn from [`Stream::Pairs`]).
    pub order_seed: u64,
    /// Seed of the prompts' initialisation (drawn from [`Stream::Pairs`]).
    pub init_seed: u64,
}

impl PairSet {
    /// Every `(k, s)` used with its pair counts, shortest prefix first.
    pub fn pair_lengths(&self) -> Vec<PairLengths> {
        let mut by: BTreeMap<(usize, usize), (usize, usize)> = BTreeMap::new();
        for p in &self.train {
            by.entry((p.prefix.len(), p.suffix.len())).or_default().0 += 1;
        }
        for p in &self.test {
            by.entry((p.prefix.len(), p.suffix.len())).or_default().1 += 1;
        }
        by.into_iter()
            .map(|((prefix_len, suffix_len), (train, test))| PairLengths {
                prefix_len,
                suffix_len,
                train,
                test,
            })
            .collect()
    }
}

/// Cut one pair from every distinct training text of `corpus` (see the module notes),
/// fit to a model of context `context` and vocabulary `vocab`, and split them with
/// `seed`'s [`Stream::Pairs`].
pub fn make_pairs(
    corpus: &Corpus,
    settings: &SoftPromptSpec,
    context: usize,
    vocab: usize,
    seed: u64,
) -> Result<PairSet, SoftPromptError> {
    settings.validate()?;
    let lengths = fit_lengths(
        context,
        settings.prompt_len,
        settings.prefix,
        settings.suffix,
    )
    .ok_or_else(|| {
        SoftPromptError::Settings(SpecError::Inconsistent(format!(
            "a context of {context} cannot hold a soft prompt, a prefix and a suffix"
        )))
    })?;
    let mut seen: HashSet<&[u32]> = HashSet::new();
    let (mut scaled, mut skipped, mut duplicates) = (0, 0, 0);
    let mut pairs = Vec::new();
    let mut ids = corpus.train.clone();
    ids.sort_unstable();
    for id in ids {
        let inst = corpus.get(id).ok_or(SoftPromptError::MissingInstance(id))?;
        if let Some(&token) = inst.tokens.iter().find(|&&t| t as usize >= vocab) {
            return Err(SoftPromptError::Vocabulary {
                instance: id,
                token,
                vocab,
            });
        }
        if !seen.insert(inst.tokens.as_slice()) {
            duplicates += 1;
            continue;
        }
        // Without the hidden context, if the instance was trained behind one.
        let tokens = inst.visible_tokens();
        let Some((k, s)) = split_lengths(tokens.len(), lengths.prefix, lengths.suffix) else {
            skipped += 1;
            continue;
        };
        if tokens.len() < lengths.prefix + lengths.suffix {
            scaled += 1;
        }
        pairs.push(Pair {
            instance: id,
            prefix: tokens[..k].to_vec(),
            suffix: tokens[k..k + s].to_vec(),
        });
    }
    let n = pairs.len();
    if n < 2 {
        return Err(SoftPromptError::TooFewPairs(n));
    }
    let mut rng = rng::stream(seed, Stream::Pairs);
    rng::shuffle(&mut pairs, &mut rng);
    let n_test = ((settings.test_fraction * n as f64).round() as usize).clamp(1, n - 1);
    let train = pairs.split_off(n_test);
    Ok(PairSet {
        lengths,
        train,
        test: pairs,
        scaled,
        skipped,
        duplicates,
        order_seed: rng.next_u64(),
        init_seed: rng.next_u64(),
    })
}
