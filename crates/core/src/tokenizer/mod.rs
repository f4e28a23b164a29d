//! Tokenizers: byte-level (default for uploaded text), character-level (vocabulary built
//! from the corpus) and the 14-token numeric vocabulary of TinyMem.
//!
//! Every tokenizer reserves three special tokens: BOS (prepended to each instance so its
//! first real token is scored), EOS (appended) and PAD (fills batches; never scored).
//!
//! TinyMem's ids are the reference code's (`src/data/old_data.py` of
//! msakarvadia/memorization): digits `0`-`9` = 0-9, `^` (BOS) = 10, `$` (EOS) = 11,
//! space = 12, pad = 13. The byte and character tokenizers put their specials after the
//! regular ids instead.

use serde::{Deserialize, Serialize};
use thiserror::Error;

pub mod hf;
pub use hf::{HfTokenizer, Specials};

/// Which tokenizer a spec asks for. The character vocabulary is built from the corpus.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum TokenizerKind {
    /// UTF-8 bytes: 256 ids plus the three specials.
    #[default]
    Byte,
    /// One id per distinct character of the corpus, plus the three specials.
    Char,
    /// TinyMem's numeric vocabulary: digits 0-9, `^` (BOS), `$` (EOS), space, PAD
    /// (14 tokens, in the reference's order).
    Tinymem,
}

/// Errors from encoding text.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum TokenizerError {
    /// A character that the vocabulary does not contain.
    #[error("character {0:?} is not in the tokenizer's vocabulary")]
    UnknownChar(char),
    /// A character-level tokenizer needs a non-empty vocabulary.
    #[error("the character vocabulary is empty")]
    EmptyVocabulary,
    /// Too many distinct characters for a character-level vocabulary.
    #[error("the text has {0} distinct characters; the character tokenizer allows at most {max}", max = MAX_CHAR_VOCAB)]
    VocabularyTooLarge(usize),
    /// A Hugging Face tokenizer failed (its message).
    #[error("tokenizer.json: {0}")]
    Hf(String),
}

/// Largest character vocabulary accepted (a model's embedding table grows with it).
pub const MAX_CHAR_VOCAB: usize = 4096;

/// A concrete tokenizer, serialisable with its vocabulary.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum Tokenizer {
    /// UTF-8 bytes.
    Byte,
    /// Characters, with the sorted vocabulary.
    Char {
        /// The vocabulary, sorted; id = index.
        vocab: Vec<char>,
    },
    /// TinyMem digits.
    Tinymem,
    /// An imported model's own tokenizer (`tokenizer.json`).
    Hf(HfTokenizer),
}

/// TinyMem's space (the reference's delimiter id).
pub const TINYMEM_SPACE: u32 = 12;
/// TinyMem's BOS `^`.
pub const TINYMEM_BOS: u32 = 10;
/// TinyMem's EOS `$`.
pub const TINYMEM_EOS: u32 = 11;
/// TinyMem's padding.
pub const TINYMEM_PAD: u32 = 13;

impl Tokenizer {
    /// Build the tokenizer of `kind`, reading the character vocabulary from `texts`.
    pub fn build<'a>(
        kind: TokenizerKind,
        texts: impl IntoIterator<Item = &'a str>,
    ) -> Result<Self, TokenizerError> {
        Ok(match kind {
            TokenizerKind::Byte => Tokenizer::Byte,
            TokenizerKind::Tinymem => Tokenizer::Tinymem,
            TokenizerKind::Char => {
                let mut set = std::collections::BTreeSet::new();
                for t in texts {
                    set.extend(t.chars());
                }
                if set.is_empty() {
                    return Err(TokenizerError::EmptyVocabulary);
                }
                if set.len() > MAX_CHAR_VOCAB {
                    return Err(TokenizerError::VocabularyTooLarge(set.len()));
                }
                Tokenizer::Char {
                    vocab: set.into_iter().collect(),
                }
            }
        })
    }

    /// The kind of this tokenizer (`None` for an imported one, which no spec names).
    pub fn kind(&self) -> Option<TokenizerKind> {
        match self {
            Tokenizer::Byte => Some(TokenizerKind::Byte),
            Tokenizer::Char { .. } => Some(TokenizerKind::Char),
            Tokenizer::Tinymem => Some(TokenizerKind::Tinymem),
            Tokenizer::Hf(_) => None,
        }
    }

    fn n_regular(&self) -> u32 {
        match self {
            Tokenizer::Byte => 256,
            Tokenizer::Char { vocab } => vocab.len() as u32,
            Tokenizer::Tinymem => 11,
            Tokenizer::Hf(t) => t.specials().vocab as u32,
        }
    }

    /// Whether `id` is a regular (non-special) token.
    fn is_regular(&self, id: u32) -> bool {
        match self {
            Tokenizer::Tinymem => id <= 9 || id == TINYMEM_SPACE,
            Tokenizer::Hf(t) => id < self.n_regular() && !t.is_special(id),
            _ => id < self.n_regular(),
        }
    }

    /// Number of ids, specials included (for an imported model: its vocabulary size).
    pub fn vocab_size(&self) -> usize {
        match self {
            Tokenizer::Hf(t) => t.specials().vocab,
            _ => self.n_regular() as usize + 3,
        }
    }

    /// Beginning-of-sequence id.
    pub fn bos(&self) -> u32 {
        match self {
            Tokenizer::Tinymem => TINYMEM_BOS,
            Tokenizer::Hf(t) => t.specials().bos,
            _ => self.n_regular(),
        }
    }

    /// End-of-sequence id.
    pub fn eos(&self) -> u32 {
        match self {
            Tokenizer::Tinymem => TINYMEM_EOS,
            Tokenizer::Hf(t) => t.specials().eos,
            _ => self.n_regular() + 1,
        }
    }

    /// Padding id (never scored).
    pub fn pad(&self) -> u32 {
        match self {
            Tokenizer::Tinymem => TINYMEM_PAD,
            Tokenizer::Hf(t) => t.specials().pad,
            _ => self.n_regular() + 2,
        }
    }

    /// Encode text to ids, without specials.
    pub fn encode(&self, text: &str) -> Result<Vec<u32>, TokenizerError> {
        match self {
            Tokenizer::Hf(t) => t.encode(text, false),
            Tokenizer::Byte => Ok(text.bytes().map(u32::from).collect()),
            Tokenizer::Char { vocab } => text
                .chars()
                .map(|c| {
                    vocab
                        .binary_search(&c)
                        .map(|i| i as u32)
                        .map_err(|_| TokenizerError::UnknownChar(c))
                })
                .collect(),
            Tokenizer::Tinymem => text
                .chars()
                .map(|c| match c {
                    '0'..='9' => Ok(c as u32 - '0' as u32),
                    ' ' => Ok(TINYMEM_SPACE),
                    other => Err(TokenizerError::UnknownChar(other)),
                })
                .collect(),
        }
    }

    /// Decode ids to text. Specials are dropped; bytes that are not valid UTF-8 are
    /// replaced by U+FFFD; ids out of range are skipped.
    pub fn decode(&self, ids: &[u32]) -> String {
        let regular = ids.iter().copied().filter(|&i| self.is_regular(i));
        match self {
            Tokenizer::Hf(t) => t.decode(&regular.collect::<Vec<_>>()),
            Tokenizer::Byte => {
                let bytes: Vec<u8> = regular.map(|i| i as u8).collect();
                String::from_utf8_lossy(&bytes).into_owned()
            }
            Tokenizer::Char { vocab } => regular.map(|i| vocab[i as usize]).collect(),
            Tokenizer::Tinymem => regular
                .map(|i| {
                    if i == TINYMEM_SPACE {
                        ' '
                    } else {
                        char::from(b'0' + i as u8)
                    }
                })
                .collect(),
        }
    }

    /// A readable label for one id, specials included (for token-by-token views).
    pub fn token_label(&self, id: u32) -> String {
        if let Tokenizer::Hf(t) = self
            && t.is_special(id)
        {
            return t.token(id).unwrap_or_default();
        }
        if id == self.bos() {
            "<bos>".into()
        } else if id == self.eos() {
            "<eos>".into()
        } else if id == self.pad() {
            "<pad>".into()
        } else {
            self.decode(&[id])
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn byte_round_trip_including_multibyte() {
        let t = Tokenizer::Byte;
        let s = "héllo, wörld — ✓";
        let ids = t.encode(s).unwrap();
        assert_eq!(ids.len(), s.len());
        assert_eq!(t.decode(&ids), s);
        assert_eq!(t.vocab_size(), 259);
        assert!(ids.iter().all(|&i| i < 256));
    }

    #[test]
    fn char_round_trip_and_unknown() {
        let t = Tokenizer::build(TokenizerKind::Char, ["abc", "cab d"]).unwrap();
        assert_eq!(t.vocab_size(), 5 + 3);
        let ids = t.encode("bad cab").unwrap();
        assert_eq!(ids, vec![2, 1, 4, 0, 3, 1, 2]);
        assert_eq!(t.decode(&ids), "bad cab");
        assert_eq!(t.encode("x"), Err(TokenizerError::UnknownChar('x')));
    }

    #[test]
    fn tinymem_vocabulary_is_14_tokens() {
        let t = Tokenizer::Tinymem;
        assert_eq!(t.vocab_size(), 14);
        let ids = t.encode("7 14 21").unwrap();
        assert_eq!(ids, vec![7, 12, 1, 4, 12, 2, 1]);
        assert_eq!(t.decode(&ids), "7 14 21");
        assert_eq!(
            [t.bos(), t.eos(), t.pad()],
            [10, 11, 13],
            "the reference's ids: ^ = 10, $ = 11, space = 12, pad = 13"
        );
        assert_eq!(t.decode(&[10, 1, 12, 2, 11, 13]), "1 2");
        assert_eq!(t.token_label(10), "<bos>");
        assert!(t.encode("7a").is_err());
    }

    #[test]
    fn specials_are_dropped_on_decode() {
        let t = Tokenizer::Byte;
        assert_eq!(t.decode(&[t.bos(), 104, 105, t.eos(), t.pad()]), "hi");
    }

    #[test]
    fn tokenizer_serialises() {
        let t = Tokenizer::build(TokenizerKind::Char, ["xyz"]).unwrap();
        let json = serde_json::to_string(&t).unwrap();
        let back: Tokenizer = serde_json::from_str(&json).unwrap();
        assert_eq!(back, t);
    }
}
