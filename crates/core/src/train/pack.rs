//! Packed training (`training.packed`): the texts of the data order joined one after
//! another and cut into full windows, as GPT pretraining does.
//!
//! Choices written down here:
//! - **Joining.** Each text keeps its BOS and EOS, so two texts are separated by EOS then
//!   BOS; a text trained behind a hidden context keeps it in front of its text.
//! - **Windows.** The joined tokens of the run's data order (epoch after epoch, the same
//!   seeded shuffles as unpacked training) are cut into windows of `context + 1` tokens
//!   with a stride of `context`, so each token is a target exactly once. The first window
//!   starts at an offset drawn once per run from [`Stream::Packing`] in `0..context`: the
//!   cut points fall inside texts, and differ from epoch to epoch because the order does.
//!   The tokens before the offset are not trained on in the first epoch.
//! - **Length.** `Steps(s)` trains `s` steps of `batch_size` windows (the data order is
//!   read on into later epochs as needed); `Epochs(e)` trains every full window of `e`
//!   epochs (`floor((tokens - offset - 1) / context)` windows; the last step may hold fewer
//!   than `batch_size`, and the tail shorter than a window is dropped).
//! - **A text's step.** A text that spans two windows (or two steps) is *trained at* the
//!   step whose windows hold its first trained token, the earliest step at which any of
//!   its tokens is a target. The recorded data order (`Trainer::order`), and with it
//!   profiles and every analysis that reads it, uses that step, so no checkpoint before it
//!   has seen any of the text. Texts wholly before the offset or after the last window
//!   are not in the order.

use rand::Rng;

use super::schedule;
use super::*;

/// A packed run's windows and the texts each step trains.
#[derive(Debug, Clone, PartialEq)]
pub struct Packing {
    /// The joined tokens from the offset on.
    tokens: Vec<u32>,
    /// Window stride (the context); each window is `context + 1` tokens.
    context: usize,
    /// Windows in the run.
    windows: usize,
    /// Windows per step.
    batch: usize,
    /// The offset of the first window in the joined tokens.
    offset: usize,
    /// The texts trained, in order.
    stream: Vec<u32>,
    /// `stream[bounds[s - 1]..bounds[s]]` are the texts trained at step `s`.
    bounds: Vec<usize>,
}

impl Packing {
    /// Plan the packed run of `spec` over `corpus`'s training texts, without those in
    /// `exclude`.
    pub fn plan(
        spec: &ExperimentSpec,
        corpus: &Corpus,
        exclude: &BTreeSet<u32>,
    ) -> Result<Self, TrainError> {
        let context = spec.model.context;
        let batch = spec.training.batch_size;
        if corpus.train.iter().all(|i| exclude.contains(i)) {
            return Err(TrainError::Corpus(CorpusError::TooFewForTraining(0)));
        }
        let offset = rng::stream(spec.seed, Stream::Packing).random_range(0..context);
        let len = |id: u32| corpus.get(id).map_or(0, |x| x.tokens.len());
        let mut order = schedule::epochs(spec, corpus, exclude);
        let (mut ids, mut n_tokens) = (Vec::new(), 0usize);
        let mut epoch = |ids: &mut Vec<u32>, n_tokens: &mut usize| {
            let e = order.next().unwrap_or_default();
            *n_tokens += e.iter().map(|&id| len(id)).sum::<usize>();
            ids.extend(e);
        };
        let windows = match spec.training.duration {
            Duration::Steps(s) => {
                let need = offset + s * batch * context + 1;
                while n_tokens < need {
                    epoch(&mut ids, &mut n_tokens);
                }
                s * batch
            }
            Duration::Epochs(e) => {
                for _ in 0..e {
                    epoch(&mut ids, &mut n_tokens);
                }
                n_tokens.saturating_sub(offset + 1) / context
            }
        };
        if windows == 0 {
            return Err(TrainError::Spec(SpecError::Inconsistent(format!(
                "packed training needs at least one window of {} tokens; the training texts \
                 hold {n_tokens}",
                context + 1
            ))));
        }
        let total_steps = windows.div_ceil(batch);
        let last_target = windows * context; // relative to the offset
        let mut tokens = Vec::with_capacity(last_target + 1);
        let (mut stream, mut bounds) = (Vec::new(), vec![0usize]);
        let mut start = 0usize; // position of the current text in the joined tokens
        for id in ids {
            let Some(inst) = corpus.get(id) else { continue };
            let end = start + inst.tokens.len();
            for (p, &t) in (start..end).zip(&inst.tokens) {
                if p >= offset && p - offset <= last_target {
                    tokens.push(t);
                }
            }
            // The text's first target position, relative to the offset.
            let first = start.max(offset + 1) - offset;
            if end > offset + 1 && first <= last_target {
                let step = (first - 1) / context / batch + 1;
                // Steps without a text of their own end where the last text's step ended.
                bounds.resize(bounds.len().max(step + 1), stream.len());
                stream.push(id);
                bounds[step] = stream.len();
            }
            start = end;
            if start > offset + last_target {
                break;
            }
        }
        while bounds.len() <= total_steps {
            bounds.push(stream.len());
        }
        Ok(Packing {
            tokens,
            context,
            windows,
            batch,
            offset,
            stream,
            bounds,
        })
    }

    /// Steps in the run.
    pub fn total_steps(&self) -> usize {
        self.windows.div_ceil(self.batch)
    }

    /// The offset of the first window in the joined tokens.
    pub fn offset(&self) -> usize {
        self.offset
    }

    /// The texts trained, in the order of their first trained token.
    pub fn stream(&self) -> &[u32] {
        &self.stream
    }

    /// The texts trained at step `step` (1-based): those whose first trained token is in
    /// one of its windows.
    pub fn texts(&self, step: usize) -> &[u32] {
        let s = step.clamp(1, self.bounds.len() - 1);
        &self.stream[self.bounds[s - 1]..self.bounds[s]]
    }

    /// The windows of step `step` (1-based), each `context + 1` tokens.
    pub fn rows(&self, step: usize) -> Vec<&[u32]> {
        let first = (step.max(1) - 1) * self.batch;
        (first..(first + self.batch).min(self.windows))
            .map(|w| &self.tokens[w * self.context..w * self.context + self.context + 1])
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn windows_tile_the_joined_texts_and_each_text_is_trained_at_its_first_target() {
        let mut spec = ExperimentSpec::demo();
        spec.model.context = 16;
        spec.training.batch_size = 3;
        spec.training.packed = true;
        spec.training.duration = Duration::Epochs(2);
        let corpus = Corpus::build(&spec.data, spec.tokenizer, 16, spec.seed).unwrap();
        let p = Packing::plan(&spec, &corpus, &BTreeSet::new()).unwrap();
        // The joined tokens of the unpacked data order, from the offset on.
        let mut unpacked = spec.clone();
        unpacked.training.packed = false;
        let (_, order) = plan(&unpacked, &corpus);
        let joined: Vec<u32> = order
            .iter()
            .flat_map(|&i| corpus.get(i).unwrap().tokens.clone())
            .collect();
        let o = p.offset();
        assert!(o < 16);
        assert_eq!(p.windows, (joined.len() - o - 1) / 16);
        assert_eq!(p.total_steps(), p.windows.div_ceil(3));
        for step in 1..=p.total_steps() {
            for (j, row) in p.rows(step).iter().enumerate() {
                let w = (step - 1) * 3 + j;
                assert_eq!(*row, &joined[o + w * 16..o + w * 16 + 17]);
            }
        }
        assert!(p.rows(p.total_steps()).len() <= 3);
        // Every text's step is the step of its first target; the order is the data order.
        let mut start = 0;
        let mut k = 0;
        for &id in &order {
            let n = corpus.get(id).unwrap().tokens.len();
            let first = start.max(o + 1) - o;
            if start + n > o + 1 && first <= p.windows * 16 {
                assert_eq!(p.stream()[k], id);
                let step = (first - 1) / 16 / 3 + 1;
                assert!(p.texts(step).contains(&id), "text {id} at step {step}");
                k += 1;
            }
            start += n;
        }
        assert_eq!(k, p.stream().len());
        let per_step: usize = (1..=p.total_steps()).map(|s| p.texts(s).len()).sum();
        assert_eq!(per_step, p.stream().len());
    }

    #[test]
    fn steps_read_on_into_later_epochs_and_too_little_text_is_refused() {
        let mut spec = ExperimentSpec::demo();
        spec.training.packed = true;
        spec.training.duration = Duration::Steps(50);
        let corpus = Corpus::build(&spec.data, spec.tokenizer, 64, spec.seed).unwrap();
        let p = Packing::plan(&spec, &corpus, &BTreeSet::new()).unwrap();
        assert_eq!(p.total_steps(), 50);
        assert!(p.rows(50).iter().all(|r| r.len() == 65));
        assert_eq!(p.rows(50).len(), spec.training.batch_size);
        spec.training.duration = Duration::Epochs(1);
        spec.model.context = 256;
        let mut tiny = corpus.clone();
        tiny.train.truncate(1);
        assert!(matches!(
            Packing::plan(&spec, &tiny, &BTreeSet::new()),
            Err(TrainError::Spec(SpecError::Inconsistent(_)))
        ));
    }
}
