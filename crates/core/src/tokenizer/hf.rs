//! A Hugging Face tokenizer (`tokenizer.json`), read by Hugging Face's own `tokenizers`
//! crate: the tokenizer of an imported model, and the file Mnemo writes when it exports
//! one of its own models.

use std::collections::HashMap;
use std::fmt;
use std::str::FromStr;
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use tokenizers::models::bpe::BPE;
use tokenizers::pre_tokenizers::byte_level::ByteLevel;
use tokenizers::processors::template::TemplateProcessing;
use tokenizers::{AddedToken, Tokenizer as HfInner};

use super::{Tokenizer, TokenizerError};

/// A `tokenizer.json` tokenizer with the model's special ids.
#[derive(Clone, Serialize, Deserialize)]
#[serde(try_from = "HfRepr", into = "HfRepr")]
pub struct HfTokenizer {
    json: Arc<str>,
    inner: Arc<HfInner>,
    specials: Specials,
}

/// The special ids a model's config names, and its vocabulary size (which may exceed
/// the tokenizer's: Pythia's embedding matrix is padded to a multiple of 128).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Specials {
    /// Beginning of sequence.
    pub bos: u32,
    /// End of sequence.
    pub eos: u32,
    /// Padding (never scored; the end-of-text token when the model has no pad).
    pub pad: u32,
    /// The model's vocabulary size.
    pub vocab: usize,
}

#[derive(Serialize, Deserialize)]
struct HfRepr {
    json: String,
    #[serde(flatten)]
    specials: Specials,
}

impl TryFrom<HfRepr> for HfTokenizer {
    type Error = TokenizerError;
    fn try_from(r: HfRepr) -> Result<Self, TokenizerError> {
        HfTokenizer::from_json(&r.json, r.specials)
    }
}

impl From<HfTokenizer> for HfRepr {
    fn from(t: HfTokenizer) -> Self {
        HfRepr {
            json: t.json.to_string(),
            specials: t.specials,
        }
    }
}

impl fmt::Debug for HfTokenizer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HfTokenizer")
            .field("json_bytes", &self.json.len())
            .field("specials", &self.specials)
            .finish()
    }
}

impl PartialEq for HfTokenizer {
    fn eq(&self, other: &Self) -> bool {
        self.specials == other.specials && self.json == other.json
    }
}

impl Eq for HfTokenizer {}

fn hf_err(e: impl fmt::Display) -> TokenizerError {
    TokenizerError::Hf(e.to_string())
}

impl HfTokenizer {
    /// Read `tokenizer.json` text.
    pub fn from_json(json: &str, specials: Specials) -> Result<Self, TokenizerError> {
        let inner = HfInner::from_str(json).map_err(hf_err)?;
        Ok(HfTokenizer {
            json: json.into(),
            inner: Arc::new(inner),
            specials,
        })
    }

    /// The `tokenizer.json` text.
    pub fn json(&self) -> &str {
        &self.json
    }

    /// The special ids.
    pub fn specials(&self) -> Specials {
        self.specials
    }

    /// The ids of `text`, with the specials the tokenizer's post-processor adds when
    /// `with_specials` (what `transformers`' `tokenizer(text)` gives by default).
    pub fn encode(&self, text: &str, with_specials: bool) -> Result<Vec<u32>, TokenizerError> {
        Ok(self
            .inner
            .encode(text, with_specials)
            .map_err(hf_err)?
            .get_ids()
            .to_vec())
    }

    /// The text of `ids`, special tokens left out.
    pub fn decode(&self, ids: &[u32]) -> String {
        self.inner.decode(ids, true).unwrap_or_default()
    }

    /// The token string of one id (byte-level tokens as the tokenizer spells them).
    pub fn token(&self, id: u32) -> Option<String> {
        self.inner.id_to_token(id)
    }

    /// Whether `id` is one of the tokenizer's special (added) tokens.
    pub fn is_special(&self, id: u32) -> bool {
        self.inner
            .get_added_tokens_decoder()
            .get(&id)
            .is_some_and(|t| t.special)
    }
}

/// Names of the three specials in a tokenizer Mnemo exports.
pub const EXPORT_BOS: &str = "<|bos|>";
/// See [`EXPORT_BOS`].
pub const EXPORT_EOS: &str = "<|eos|>";
/// See [`EXPORT_BOS`].
pub const EXPORT_PAD: &str = "<|pad|>";

/// The `tokenizer.json` of one of Mnemo's tokenizers: the same ids for every text
/// (a BPE model without merges over Mnemo's vocabulary: UTF-8 bytes through the GPT-2
/// byte-to-character map for the byte tokenizer, characters for the others), the three
/// specials as added tokens, and a post-processor that puts BOS in front, as Mnemo's
/// training does, so that `transformers`' `tokenizer(text)` gives the ids Mnemo scores
/// (without the final EOS, which a user generating text does not want).
pub fn export_json(tokenizer: &Tokenizer) -> Result<String, TokenizerError> {
    let mut vocab: HashMap<String, u32> = HashMap::new();
    let byte_level = matches!(tokenizer, Tokenizer::Byte);
    match tokenizer {
        Tokenizer::Byte => {
            let chars = byte_chars();
            for b in 0..=255u8 {
                vocab.insert(chars[b as usize].to_string(), b as u32);
            }
        }
        Tokenizer::Char { vocab: v } => {
            for (i, c) in v.iter().enumerate() {
                vocab.insert(c.to_string(), i as u32);
            }
        }
        Tokenizer::Tinymem => {
            for d in 0..10u32 {
                vocab.insert(d.to_string(), d);
            }
            vocab.insert(" ".into(), super::TINYMEM_SPACE);
        }
        Tokenizer::Hf(t) => return Ok(t.json().to_string()),
    }
    let specials = [
        (EXPORT_BOS, tokenizer.bos()),
        (EXPORT_EOS, tokenizer.eos()),
        (EXPORT_PAD, tokenizer.pad()),
    ];
    for (name, id) in specials {
        vocab.insert(name.to_string(), id);
    }
    let model = BPE::builder()
        .vocab_and_merges(
            vocab
                .into_iter()
                .collect::<tokenizers::models::bpe::Vocab>(),
            Vec::new(),
        )
        .build()
        .map_err(hf_err)?;
    let mut tk = HfInner::new(model);
    if byte_level {
        let bl = ByteLevel::new(false, true, false);
        tk.with_pre_tokenizer(Some(bl));
        tk.with_decoder(Some(bl));
    } else {
        // Characters join without separators.
        tk.with_decoder(Some(tokenizers::decoders::fuse::Fuse::new()));
    }
    let added: Vec<AddedToken> = specials
        .iter()
        .map(|(name, _)| AddedToken::from(*name, true))
        .collect();
    tk.add_special_tokens(&added);
    let post = TemplateProcessing::builder()
        .try_single(format!("{EXPORT_BOS} $A"))
        .map_err(hf_err)?
        .special_tokens(vec![(EXPORT_BOS, tokenizer.bos())])
        .build()
        .map_err(hf_err)?;
    tk.with_post_processor(Some(post));
    tk.to_string(true).map_err(hf_err)
}

/// GPT-2's map from bytes to printable characters (`bytes_to_unicode`).
fn byte_chars() -> Vec<char> {
    let mut printable: Vec<u32> = (u32::from(b'!')..=u32::from(b'~'))
        .chain(0xA1..=0xAC)
        .chain(0xAE..=0xFF)
        .collect();
    let mut chars: Vec<u32> = printable.clone();
    let mut n = 0;
    for b in 0..256u32 {
        if !printable.contains(&b) {
            printable.push(b);
            chars.push(256 + n);
            n += 1;
        }
    }
    let mut out = vec!['\0'; 256];
    for (b, c) in printable.into_iter().zip(chars) {
        out[b as usize] = char::from_u32(c).unwrap_or('\0');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tokenizer::TokenizerKind;

    fn round_trip(t: &Tokenizer, text: &str) {
        let json = export_json(t).unwrap();
        let specials = Specials {
            bos: t.bos(),
            eos: t.eos(),
            pad: t.pad(),
            vocab: t.vocab_size(),
        };
        let hf = HfTokenizer::from_json(&json, specials).unwrap();
        let mut want = vec![t.bos()];
        want.extend(t.encode(text).unwrap());
        assert_eq!(hf.encode(text, true).unwrap(), want, "{text:?}");
        assert_eq!(hf.encode(text, false).unwrap(), want[1..].to_vec());
        assert_eq!(hf.decode(&want), text);
        assert!(hf.is_special(t.bos()) && !hf.is_special(want[want.len() - 1]));
    }

    #[test]
    fn exported_tokenizers_give_mnemos_ids() {
        round_trip(&Tokenizer::Byte, "héllo, wörld — ✓ \n\t end");
        let c = Tokenizer::build(TokenizerKind::Char, ["abc d, é"]).unwrap();
        round_trip(&c, "bad cab, é");
        round_trip(&Tokenizer::Tinymem, "7 14 21");
    }

    #[test]
    fn byte_map_is_a_bijection_onto_gpt2s_characters() {
        let m = byte_chars();
        let set: std::collections::HashSet<char> = m.iter().copied().collect();
        assert_eq!(set.len(), 256);
        assert_eq!(m[b'A' as usize], 'A');
        assert_eq!(m[b' ' as usize], 'Ġ');
        assert_eq!(m[b'\n' as usize], 'Ċ');
    }
}
