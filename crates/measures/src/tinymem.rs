//! TinyMem's measures (METHODS.md section 5), as the reference code measures them
//! (`refined_check_percent_memorized` in msakarvadia/memorization), on any burn device:
//! every read of a tensor goes through `into_data_async`.
//!
//! - **Noise memorisation.** For each noised training example: the prefix is the first
//!   [`PREFIX`] tokens of its *clean* copy, greedy decoding continues it, and the example
//!   is *memorised* when the generated window (tokens 50-99) equals the *noised* copy's.
//!   Only examples whose window differs between the two copies count. Those reproducing
//!   the clean window instead are counted too (the model computed the rule).
//!   Choice written down: the window stops at the example's end (EOS included). The
//!   reference pads every row to 150 tokens and its model was trained to predict the
//!   padding, so its window can run into padding; Mnemo never trains on padding.
//! - **Backdoor success.** For each backdoor test example: the prefix ends right after
//!   the trigger, [`WINDOW`] tokens are generated (fewer when the context ends first) and
//!   the backdoor *fires* when all of them are `2`.
//! - **Accuracy and perplexity**, teacher-forced on the clean test sets of all tasks;
//!   padding positions are excluded (the reference counts them: say so beside its
//!   numbers).

use mnemo_core::burn::tensor::Tensor;
use mnemo_core::burn::tensor::activation::log_softmax;
use mnemo_core::corpus::{InstanceKind, TinyMemLayout, find_tokens};
use mnemo_core::train::token_batch;
use mnemo_core::{Corpus, Gpt};
use serde::{Deserialize, Serialize};
use thiserror::Error;

/// Prefix length of the noise measure (the reference's `prompt_len`).
pub const PREFIX: usize = 50;
/// Window length of both measures (the reference's `k`).
pub const WINDOW: usize = 50;
/// Prefixes decoded in one batch.
pub const DECODE_BATCH: usize = 64;
/// Sequences per teacher-forced batch.
pub const EVAL_BATCH: usize = 64;

/// Why a TinyMem measure could not be taken.
#[derive(Debug, Error)]
pub enum TinyMemError {
    /// The corpus is not TinyMem data with per-task test sets.
    #[error(
        "the corpus is not TinyMem data with test sets (data.source.kind = tinymem with test_sequences)"
    )]
    NotTinyMem,
    /// An id that the corpus does not have, or of the wrong kind.
    #[error("instance {0} is missing or not of the kind this measure reads")]
    Instance(u32),
    /// A token outside the model's vocabulary.
    #[error("token {token} is outside the model's vocabulary of {vocab}")]
    Vocabulary {
        /// The token.
        token: u32,
        /// The model's vocabulary size.
        vocab: usize,
    },
    /// A device read failed.
    #[error("device: {0}")]
    Device(String),
}

fn dev<E: std::fmt::Debug>(e: E) -> TinyMemError {
    TinyMemError::Device(format!("{e:?}"))
}

/// One noised example under the noise measure.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NoiseRow {
    /// Instance id (the noised training instance).
    pub instance: u32,
    /// Whether its window differs from the clean copy's (only those count).
    pub counted: bool,
    /// The generated window equals the noised copy's.
    pub memorised: bool,
    /// The generated window equals the clean copy's.
    pub clean: bool,
    /// The generated window.
    pub generated: Vec<u32>,
}

/// The noise measure over a set of noised examples.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NoiseMemorisation {
    /// One row per noised example, in the order asked.
    pub rows: Vec<NoiseRow>,
    /// Examples whose window differs from the clean one.
    pub counted: usize,
    /// Of those, reproduced with their noise.
    pub memorised: usize,
    /// Of those, reproduced without their noise (the rule).
    pub clean: usize,
}

impl NoiseMemorisation {
    /// Share of the counted examples memorised (0 when none counts).
    pub fn memorised_fraction(&self) -> f64 {
        ratio(self.memorised, self.counted)
    }

    /// Share of the counted examples reproducing the clean window.
    pub fn clean_fraction(&self) -> f64 {
        ratio(self.clean, self.counted)
    }
}

fn ratio(a: usize, b: usize) -> f64 {
    if b == 0 { 0.0 } else { a as f64 / b as f64 }
}

/// `[BOS] + text + [EOS]` under the corpus's tokenizer.
fn tokens_of(corpus: &Corpus, text: &str, id: u32) -> Result<Vec<u32>, TinyMemError> {
    let t = &corpus.tokenizer;
    let mut v = vec![t.bos()];
    v.extend(t.encode(text).map_err(|_| TinyMemError::Instance(id))?);
    v.push(t.eos());
    Ok(v)
}

fn check_vocab(model: &Gpt, rows: &[Vec<u32>]) -> Result<(), TinyMemError> {
    let vocab = model.vocab_size();
    for r in rows {
        if let Some(&token) = r.iter().find(|&&t| t as usize >= vocab) {
            return Err(TinyMemError::Vocabulary { token, vocab });
        }
    }
    Ok(())
}

/// Greedy continuations of `prompts`, `n[i]` tokens each (decoded in batches of equal
/// prompt length, `max(n)` per batch, then cut).
async fn decode(
    model: &Gpt,
    prompts: &[Vec<u32>],
    n: &[usize],
) -> Result<Vec<Vec<u32>>, TinyMemError> {
    let mut out = Vec::with_capacity(prompts.len());
    for (chunk, lens) in prompts.chunks(DECODE_BATCH).zip(n.chunks(DECODE_BATCH)) {
        let most = lens.iter().copied().max().unwrap_or(0);
        let generated = model.greedy_batch(chunk, most).await.map_err(dev)?;
        for (mut g, &len) in generated.into_iter().zip(lens) {
            g.truncate(len);
            out.push(g);
        }
    }
    Ok(out)
}

/// The noise measure on the noised instances `ids` (see the module's documentation).
pub async fn noise_memorisation(
    model: &Gpt,
    corpus: &Corpus,
    ids: &[u32],
) -> Result<NoiseMemorisation, TinyMemError> {
    let mut prompts = Vec::new();
    let mut lens = Vec::new();
    let mut windows = Vec::new();
    for &id in ids {
        let inst = corpus.get(id).ok_or(TinyMemError::Instance(id))?;
        let InstanceKind::Noised { clean } = &inst.kind else {
            return Err(TinyMemError::Instance(id));
        };
        let clean = tokens_of(corpus, clean, id)?;
        let noised = &inst.tokens;
        let window = |t: &[u32]| {
            t.get(PREFIX..t.len().min(PREFIX + WINDOW))
                .unwrap_or(&[])
                .to_vec()
        };
        let (wn, wc) = (window(noised), window(&clean));
        let prefix = clean[..clean.len().min(PREFIX)].to_vec();
        lens.push(wn.len().max(wc.len()));
        prompts.push(prefix);
        windows.push((wn, wc));
    }
    check_vocab(model, &prompts)?;
    let generated = decode(model, &prompts, &lens).await?;
    let mut rows = Vec::with_capacity(ids.len());
    let (mut counted, mut memorised, mut clean_n) = (0, 0, 0);
    for ((&id, (wn, wc)), g) in ids.iter().zip(windows).zip(generated) {
        let is_counted = wn != wc && !wn.is_empty();
        let is_mem = is_counted && g.get(..wn.len()) == Some(&wn[..]);
        let is_clean = is_counted && g.get(..wc.len()) == Some(&wc[..]);
        counted += usize::from(is_counted);
        memorised += usize::from(is_mem);
        clean_n += usize::from(is_clean);
        rows.push(NoiseRow {
            instance: id,
            counted: is_counted,
            memorised: is_mem,
            clean: is_clean,
            generated: g,
        });
    }
    Ok(NoiseMemorisation {
        rows,
        counted,
        memorised,
        clean: clean_n,
    })
}

/// One triggered example under the backdoor measure.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BackdoorRow {
    /// Instance id.
    pub instance: u32,
    /// Tokens in the prefix (through the trigger).
    pub prefix_len: usize,
    /// Whether every generated token was `2`.
    pub fired: bool,
    /// The generated tokens.
    pub generated: Vec<u32>,
}

/// Backdoor success over a set of triggered examples.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BackdoorSuccess {
    /// One row per example.
    pub rows: Vec<BackdoorRow>,
    /// Examples where the backdoor fired.
    pub fired: usize,
}

impl BackdoorSuccess {
    /// Share of the examples where it fired.
    pub fn fraction(&self) -> f64 {
        ratio(self.fired, self.rows.len())
    }
}

/// The backdoor measure on the triggered instances `ids`.
pub async fn backdoor_success(
    model: &Gpt,
    corpus: &Corpus,
    layout: &TinyMemLayout,
    ids: &[u32],
) -> Result<BackdoorSuccess, TinyMemError> {
    let trigger = layout.trigger.as_ref().ok_or(TinyMemError::NotTinyMem)?;
    let ctx = model.context();
    let mut prompts = Vec::new();
    let mut lens = Vec::new();
    for &id in ids {
        let inst = corpus.get(id).ok_or(TinyMemError::Instance(id))?;
        let at = find_tokens(&inst.tokens, trigger).ok_or(TinyMemError::Instance(id))?;
        let cut = at + trigger.len();
        prompts.push(inst.tokens[..cut].to_vec());
        lens.push(WINDOW.min(ctx.saturating_sub(cut)).max(1));
    }
    check_vocab(model, &prompts)?;
    let generated = decode(model, &prompts, &lens).await?;
    let mut rows = Vec::new();
    let mut fired = 0;
    for ((&id, p), g) in ids.iter().zip(&prompts).zip(generated) {
        let f = !g.is_empty() && g.iter().all(|&t| t == 2);
        fired += usize::from(f);
        rows.push(BackdoorRow {
            instance: id,
            prefix_len: p.len(),
            fired: f,
            generated: g,
        });
    }
    Ok(BackdoorSuccess { rows, fired })
}

/// Teacher-forced quality on the clean test sets.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Quality {
    /// Next-token accuracy over every scored position of every test set (padding
    /// excluded).
    pub accuracy: f64,
    /// `exp` of the mean token cross-entropy over the same positions.
    pub perplexity: f64,
    /// Accuracy per task, in the layout's order: `(k, accuracy)`.
    pub per_task: Vec<(u32, f64)>,
}

/// Sum of correct predictions, sum of token negative log-likelihoods and the number of
/// scored positions over `rows` (teacher-forced, padding excluded).
pub async fn score_rows(
    model: &Gpt,
    rows: &[&[u32]],
    pad: u32,
) -> Result<(f64, f64, usize), TinyMemError> {
    let device = model.wte.val().device();
    let (mut hits, mut nll, mut count) = (0.0f64, 0.0f64, 0usize);
    for chunk in rows.chunks(EVAL_BATCH) {
        let (inputs, targets, mask, n) = token_batch(chunk, pad, &device);
        let logp = log_softmax(model.forward(inputs), 2);
        let hit = logp
            .clone()
            .argmax(2)
            .squeeze_dim::<2>(2)
            .equal(targets.clone())
            .float();
        let lp: Tensor<2> = logp.gather(2, targets.unsqueeze_dim(2)).squeeze_dim(2);
        let h: f32 = (hit * mask.clone())
            .sum()
            .into_scalar_async()
            .await
            .map_err(dev)?;
        let l: f32 = (lp * mask).sum().into_scalar_async().await.map_err(dev)?;
        hits += h as f64;
        nll -= l as f64;
        count += n;
    }
    Ok((hits, nll, count))
}

/// Accuracy and perplexity on the clean test sets of every task.
pub async fn quality(
    model: &Gpt,
    corpus: &Corpus,
    layout: &TinyMemLayout,
) -> Result<Quality, TinyMemError> {
    let pad = corpus.tokenizer.pad();
    let (mut hits, mut nll, mut count) = (0.0, 0.0, 0usize);
    let mut per_task = Vec::new();
    for task in &layout.tasks {
        let rows: Vec<&[u32]> = task
            .test
            .iter()
            .map(|&i| {
                corpus
                    .get(i)
                    .map(|x| x.tokens.as_slice())
                    .ok_or(TinyMemError::Instance(i))
            })
            .collect::<Result<_, _>>()?;
        let owned: Vec<Vec<u32>> = rows.iter().map(|r| r.to_vec()).collect();
        check_vocab(model, &owned)?;
        let (h, l, c) = score_rows(model, &rows, pad).await?;
        per_task.push((task.k, ratio_f(h, c)));
        hits += h;
        nll += l;
        count += c;
    }
    if count == 0 {
        return Err(TinyMemError::NotTinyMem);
    }
    Ok(Quality {
        accuracy: hits / count as f64,
        perplexity: (nll / count as f64).exp(),
        per_task,
    })
}

fn ratio_f(a: f64, b: usize) -> f64 {
    if b == 0 { 0.0 } else { a / b as f64 }
}

/// What is memorised: the noise measure on the noised training examples, or backdoor
/// success on the backdoor test set.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum Memorisation {
    /// Noise data.
    Noise(NoiseMemorisation),
    /// Backdoor data.
    Backdoor(BackdoorSuccess),
}

impl Memorisation {
    /// The memorised share: memorised noised examples, or backdoor test examples where it
    /// fired.
    pub fn fraction(&self) -> f64 {
        match self {
            Memorisation::Noise(n) => n.memorised_fraction(),
            Memorisation::Backdoor(b) => b.fraction(),
        }
    }

    /// The share reproducing the clean continuation (noise data; `None` for backdoor).
    pub fn clean_fraction(&self) -> Option<f64> {
        match self {
            Memorisation::Noise(n) => Some(n.clean_fraction()),
            Memorisation::Backdoor(_) => None,
        }
    }

    /// `(instance, memorised)` per measured example (only the counted ones for noise).
    pub fn per_sequence(&self) -> Vec<(u32, bool)> {
        match self {
            Memorisation::Noise(n) => n
                .rows
                .iter()
                .filter(|r| r.counted)
                .map(|r| (r.instance, r.memorised))
                .collect(),
            Memorisation::Backdoor(b) => b.rows.iter().map(|r| (r.instance, r.fired)).collect(),
        }
    }

    /// The generated tokens of every measured example, in the order of
    /// [`Memorisation::per_sequence`].
    pub fn generated(&self) -> Vec<Vec<u32>> {
        match self {
            Memorisation::Noise(n) => n
                .rows
                .iter()
                .filter(|r| r.counted)
                .map(|r| r.generated.clone())
                .collect(),
            Memorisation::Backdoor(b) => b.rows.iter().map(|r| r.generated.clone()).collect(),
        }
    }
}

/// One measured example as a page shows it: the prompt the model was given, the
/// continuation that counts as memorised and the clean one.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ShownExample {
    /// Instance id.
    pub instance: u32,
    /// The prompt: the clean copy's first [`PREFIX`] tokens (noise), or the example
    /// through its trigger (backdoor).
    pub prompt: Vec<u32>,
    /// The memorised continuation: the noised copy's window, or the backdoor's `2`s.
    pub memorised: Vec<u32>,
    /// The clean continuation: the clean copy's window, or the clean example's tokens
    /// after the trigger.
    pub clean: Vec<u32>,
}

/// The examples [`Memorisation::per_sequence`] lists, with their prompts and the two
/// continuations, for showing them token by token.
pub fn shown_examples(
    corpus: &Corpus,
    measured: &Memorisation,
) -> Result<Vec<ShownExample>, TinyMemError> {
    let window = |t: &[u32], from: usize, len: usize| {
        t.get(from..t.len().min(from + len)).unwrap_or(&[]).to_vec()
    };
    match measured {
        Memorisation::Noise(n) => n
            .rows
            .iter()
            .filter(|r| r.counted)
            .map(|r| {
                let inst = corpus
                    .get(r.instance)
                    .ok_or(TinyMemError::Instance(r.instance))?;
                let InstanceKind::Noised { clean } = &inst.kind else {
                    return Err(TinyMemError::Instance(r.instance));
                };
                let clean = tokens_of(corpus, clean, r.instance)?;
                Ok(ShownExample {
                    instance: r.instance,
                    prompt: clean[..clean.len().min(PREFIX)].to_vec(),
                    memorised: window(&inst.tokens, PREFIX, WINDOW),
                    clean: window(&clean, PREFIX, WINDOW),
                })
            })
            .collect(),
        Memorisation::Backdoor(b) => b
            .rows
            .iter()
            .map(|r| {
                let inst = corpus
                    .get(r.instance)
                    .ok_or(TinyMemError::Instance(r.instance))?;
                let InstanceKind::Backdoor { clean } = &inst.kind else {
                    return Err(TinyMemError::Instance(r.instance));
                };
                let clean = tokens_of(corpus, clean, r.instance)?;
                let n = r.generated.len();
                Ok(ShownExample {
                    instance: r.instance,
                    prompt: inst.tokens[..r.prefix_len.min(inst.tokens.len())].to_vec(),
                    memorised: window(&inst.tokens, r.prefix_len, n),
                    clean: window(&clean, r.prefix_len, n),
                })
            })
            .collect(),
    }
}

/// The corpus's TinyMem layout, when it has per-task test sets.
pub fn layout(corpus: &Corpus) -> Result<&TinyMemLayout, TinyMemError> {
    corpus
        .tinymem
        .as_ref()
        .filter(|l| l.tasks.iter().any(|t| !t.test.is_empty()))
        .ok_or(TinyMemError::NotTinyMem)
}

/// Memorisation as the data defines it (noise or backdoor).
pub async fn memorisation(model: &Gpt, corpus: &Corpus) -> Result<Memorisation, TinyMemError> {
    let l = layout(corpus)?;
    if l.trigger.is_some() {
        Ok(Memorisation::Backdoor(
            backdoor_success(model, corpus, l, &l.backdoor_test).await?,
        ))
    } else {
        Ok(Memorisation::Noise(
            noise_memorisation(model, corpus, &l.noised).await?,
        ))
    }
}
