//! Corpora of given texts, for models Mnemo did not train (imported from Hugging Face).

use super::{Corpus, CorpusError, Instance, InstanceKind, fit};
use crate::spec::limits;
use crate::tokenizer::Tokenizer;

impl Corpus {
    /// A corpus of given texts for a given tokenizer (an imported model's own): instance
    /// `i` is `texts[i]`, the ids in `heldout` are never-trained and every other id is a
    /// training id. An imported tokenizer ([`Tokenizer::Hf`]) encodes a text as
    /// `transformers`' `tokenizer(text)` does (its own specials, if any); Mnemo's put BOS
    /// in front and EOS behind, as [`Corpus::build`] does. Tokens are cut to
    /// `context + 1`; ids in `heldout` past the last text are ignored.
    pub fn from_texts(
        tokenizer: Tokenizer,
        texts: Vec<String>,
        context: usize,
        heldout: &[u32],
    ) -> Result<Corpus, CorpusError> {
        if texts.is_empty() {
            return Err(CorpusError::Empty);
        }
        if texts.len() > limits::INSTANCES {
            return Err(CorpusError::TooManyInstances(texts.len()));
        }
        let held: std::collections::BTreeSet<u32> = heldout.iter().copied().collect();
        let mut instances = Vec::with_capacity(texts.len());
        let mut truncated = 0;
        for (i, text) in texts.into_iter().enumerate() {
            let tokens = match &tokenizer {
                Tokenizer::Hf(t) => t.encode(&text, true)?,
                other => {
                    let mut v = vec![other.bos()];
                    v.extend(other.encode(&text)?);
                    v.push(other.eos());
                    v
                }
            };
            instances.push(Instance {
                id: i as u32,
                text,
                tokens: fit(tokens, context, &mut truncated),
                kind: InstanceKind::Plain,
                context: String::new(),
                hidden: 0,
            });
        }
        let n = instances.len() as u32;
        Ok(Corpus {
            tokenizer,
            instances,
            train: (0..n).filter(|i| !held.contains(i)).collect(),
            heldout: held.into_iter().filter(|&i| i < n).collect(),
            truncated,
            canary: None,
            canaries: Vec::new(),
            tinymem: None,
        })
    }

    /// The same instances, splits and canaries encoded by an imported model's tokenizer,
    /// in the layout [`Corpus::from_texts`] describes (cut to `context + 1` tokens). A
    /// hidden training context (the records corpus) is dropped: the imported model was not
    /// trained by Mnemo, so the instance is its text alone.
    pub fn retokenised(&self, tokenizer: Tokenizer, context: usize) -> Result<Corpus, CorpusError> {
        let texts: Vec<String> = self.instances.iter().map(|i| i.text.clone()).collect();
        let fresh = Corpus::from_texts(tokenizer, texts, context, &self.heldout)?;
        let instances = self
            .instances
            .iter()
            .zip(fresh.instances)
            .map(|(old, new)| Instance {
                tokens: new.tokens,
                context: String::new(),
                hidden: 0,
                ..old.clone()
            })
            .collect();
        Ok(Corpus {
            tokenizer: fresh.tokenizer,
            instances,
            truncated: fresh.truncated,
            ..self.clone()
        })
    }
}
